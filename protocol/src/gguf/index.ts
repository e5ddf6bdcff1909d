export * from "./types";
export * from "./writer";
