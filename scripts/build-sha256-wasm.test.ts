import { expect, it } from "vitest";
import { committedSha256Wasm, compileSha256 } from "./build-sha256-wasm";

it("the committed sha256.wasm is what the generator builds (run npm run build:sha256-wasm after changing it)", async () => {
  expect(Buffer.from(await compileSha256()).equals(committedSha256Wasm())).toBe(true);
});
