// A history that cannot be read: the CLI prints one line with the line number and exits 2.
export class HistoryFormatError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(line > 0 ? `line ${line}: ${message}` : message);
  }
}
