// A worker thread of the pool: runs the jobs it is sent, one at a time, and answers each.
import { parentPort } from "node:worker_threads";
import { type Job, runJob } from "./fuzz.js";

parentPort?.on("message", (job: Job) => {
  parentPort?.postMessage(runJob(job));
});
