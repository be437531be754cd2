// A fuzz worker thread: runs the seeds it is sent, one at a time, and answers each.
import { parentPort } from "node:worker_threads";
import { runSeed, type SeedJob } from "./fuzz.js";

parentPort?.on("message", (job: SeedJob) => {
  parentPort?.postMessage(runSeed(job));
});
