/**
 * The running hash of a multipart upload survives between part requests as text in D1: protocol's Sha256 exports
 * and restores its state at block boundaries (parts are multiples of 64 bytes).
 */
export { Sha256 as ResumableSha256 } from "@corral/protocol/sha256";
