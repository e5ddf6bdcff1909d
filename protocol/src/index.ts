export * from "./errors";
export * from "./gguf/index";
