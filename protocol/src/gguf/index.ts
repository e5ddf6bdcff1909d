export {
  describeModel,
  formatFixedGo,
  humanNumber,
  type ModelDescription,
  metadataNumber,
  modelInfo,
  ollamaTensorTypeName,
  parameterCount,
  projectorOutputWidth,
  shortestFloat32,
  type TensorDescription,
  tensorsInfo,
} from "./describe";
export {
  DEFAULT_GGUF_LIMITS,
  type GgufEntry,
  type GgufHeader,
  type GgufLimits,
  type GgufScalar,
  type GgufTensorInfo,
  type GgufValue,
  readGgufHeader,
} from "./reader";
export { type ByteSource, bytesSource, GgufError, isGgufError } from "./source";
export * from "./types";
export * from "./writer";
