/**
 * Loaded models. Weights (one LlamaModel per GGUF blob) are shared by the instances that use them; an instance
 * adds a context for one num_ctx / adapter combination. Requests lease an instance for their duration; when the
 * last lease ends the keep_alive timer starts (0 unloads at once, negative never). Loading beyond the memory
 * budget first unloads idle instances in keep_alive expiry order, those the loading tenant may unload under the
 * fair-share rule the scheduler places by (protocol's fairVictims): its own first, others' only up to an equal split.
 */

import { ApiError } from "@corral/protocol/errors";
import { fairVictims } from "@corral/protocol/fair-share";
import type { LoadedModel } from "@corral/protocol/runner";
import type { Llama, LlamaModel } from "node-llama-cpp";
import type { BlobCache, BlobLease } from "./blob-cache";
import { type Clock, systemClock, type TimerHandle } from "./clock";
import type { FlashAttentionSetting } from "./config";
import { busy } from "./errors";
import {
  type InstanceSpec,
  instanceKey,
  type MemoryEstimate,
  ModelInstance,
  type VisionBackend,
} from "./model-instance";
import { inlineTokenizer, type Tokenizer } from "./tokenizer";
import { LlamaServerProcess } from "./vision/llama-server";

export const DEFAULT_KEEP_ALIVE_MS = 5 * 60 * 1000;
/** What ps shows for keep_alive < 0, like Ollama's far-future expiry. */
const FOREVER_ISO = "9999-12-31T23:59:59.999Z";

export interface ModelPoolOptions {
  llama: Llama;
  blobs: BlobCache;
  clock?: Clock;
  threads: number;
  /** num_ctx when the request and the model's parameters set none. */
  defaultNumCtx: number;
  /** Sequences per instance. */
  parallel: number;
  /** Flash attention for generation contexts (FLASH_ATTENTION); default "auto", as llama-server. */
  flashAttention?: FlashAttentionSetting;
  /**
   * llama.cpp's llama-server binary: a model with a projector layer gets one (with `--mmproj`) for its image
   * requests. Absent: such models load for text only, and images answer 400.
   */
  llamaServer?: string;
  memoryBudgetBytes: number;
  defaultKeepAliveMs?: number;
  /** Requests that may wait for a sequence of one instance before the next gets 503. */
  maxWaiting?: number;
  /** Tokenises prompts (long ones off the event loop); default: in place. */
  tokenizer?: Tokenizer;
  /** Called when the set of loaded instances changes (the heartbeat reports at once). */
  onChange?: () => void;
  /** An instance finished loading / was unloaded, and why (metrics). */
  onLoad?: () => void;
  onUnload?: (reason: UnloadReason) => void;
}

/**
 * keep_alive ran out (or was 0), another model needed the memory, the runner is shutting down, or the
 * instance's llama-server died (the next request loads it afresh).
 */
export type UnloadReason = "expired" | "memory" | "shutdown" | "crashed";

interface Weights {
  model: LlamaModel;
  memory: MemoryEstimate;
  blobLease: BlobLease;
  users: number;
}

/** A request's hold on an instance. `release` (idempotent) starts the keep_alive countdown when it was the last. */
export interface ModelLease {
  readonly instance: ModelInstance;
  /** Nanoseconds spent fetching and loading for this request (0 when it was loaded already). */
  readonly loadDurationNs: number;
  release(): void;
}

/** What identifies a model's weights and adapters; num_ctx is added per request. */
export type ModelSpec = Omit<InstanceSpec, "numCtx">;

const total = (m: MemoryEstimate) => m.ram + m.vram;

/**
 * llama.cpp's estimates are fractional for quantized types (bytes per block / elements per block); everything the
 * pool adds up is whole bytes, rounded up, so what the heartbeat reports is whole (the protocol requires it).
 */
const wholeBytes = (estimate: { cpuRam: number; gpuVram: number }, gpu: boolean): MemoryEstimate => ({
  ram: Math.ceil(estimate.cpuRam),
  vram: gpu ? Math.ceil(estimate.gpuVram) : 0,
});

/** Ollama clamps num_ctx to the training context; llama.cpp needs a few cells at least. */
function clampNumCtx(numCtx: number, model: LlamaModel): number {
  const trained = model.trainContextSize;
  return Math.max(16, trained > 0 ? Math.min(numCtx, trained) : numCtx);
}

export class ModelPool {
  private readonly instances = new Map<string, ModelInstance>();
  private readonly loading = new Map<string, Promise<ModelInstance>>();
  private readonly weights = new Map<string, Promise<Weights>>();
  private readonly loadedWeights = new Map<string, Weights>();
  private readonly timers = new Map<ModelInstance, TimerHandle>();
  private readonly clock: Clock;
  private readonly flashAttention: FlashAttentionSetting;
  private loadLock: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: ModelPoolOptions) {
    this.clock = options.clock ?? systemClock;
    this.flashAttention = options.flashAttention ?? "auto";
  }

  get memoryUsed(): number {
    let used = 0;
    for (const w of this.loadedWeights.values()) used += total(w.memory);
    for (const instance of this.instances.values()) used += total(instance.contextMemory);
    return used;
  }

  get loadedInstances(): readonly ModelInstance[] {
    return [...this.instances.values()];
  }

  /**
   * Leases an instance of the model, loading it first when needed. `numCtx` (the request's num_ctx, if any)
   * is clamped to the model's training context, as Ollama does. `keepAliveMs`: null → the default,
   * Infinity → never unload, 0 → unload as soon as the last lease ends.
   */
  async acquire(
    model: ModelSpec,
    numCtx: number | undefined,
    keepAliveMs: number | null,
    tenant?: string,
  ): Promise<ModelLease> {
    if (this.closed) throw busy("runner is shutting down");
    const started = this.clock.monotonicNs();
    // A temporary hold on the weights: they tell the training context, and cannot unload meanwhile.
    const weights = await this.acquireWeights(model, tenant);
    let instance: ModelInstance | undefined;
    try {
      const spec: InstanceSpec = { ...model, numCtx: clampNumCtx(numCtx ?? this.options.defaultNumCtx, weights.model) };
      const key = instanceKey(spec);
      instance = this.instances.get(key);
      // A new instance comes out of load() already held for the request that loaded it, so nothing can
      // unload it before that request starts; requests that waited on the same load add their own hold.
      let holding = false;
      while (!instance || instance.disposed) {
        let load = this.loading.get(key);
        holding = !load;
        if (!load) {
          load = this.load(key, spec, weights, keepAliveMs, tenant).finally(() => this.loading.delete(key));
          this.loading.set(key, load);
        }
        instance = await load;
      }
      if (!holding) instance.users++;
    } finally {
      this.releaseWeights(model.modelBlob);
    }
    this.timers.get(instance)?.cancel();
    this.timers.delete(instance);
    if (tenant) instance.tenant = tenant;
    instance.keepAliveMs = keepAliveMs ?? this.defaultKeepAlive;
    instance.expiresAt = this.clock.now() + instance.keepAliveMs;
    const loadDurationNs = Number(this.clock.monotonicNs() - started);
    let released = false;
    const held = instance;
    return {
      instance,
      loadDurationNs,
      release: () => {
        if (released) return;
        released = true;
        held.users--;
        if (held.users === 0) this.scheduleExpiry(held);
      },
    };
  }

  private get defaultKeepAlive(): number {
    return this.options.defaultKeepAliveMs ?? DEFAULT_KEEP_ALIVE_MS;
  }

  private scheduleExpiry(instance: ModelInstance): void {
    if (instance.disposed) return;
    instance.expiresAt = this.clock.now() + instance.keepAliveMs;
    if (instance.keepAliveMs <= 0) {
      void this.unloadInstance(instance, "expired");
      return;
    }
    if (instance.keepAliveMs === Number.POSITIVE_INFINITY) return;
    this.timers.set(
      instance,
      this.clock.setTimer(() => {
        this.timers.delete(instance);
        if (instance.users === 0) void this.unloadInstance(instance, "expired");
      }, instance.keepAliveMs),
    );
    this.options.onChange?.();
  }

  /** keep_alive 0 for a model: every idle instance of the blob unloads now, busy ones when their requests end. */
  async expireModel(modelBlob: string): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const instance of this.instances.values()) {
      if (instance.spec.modelBlob !== modelBlob) continue;
      instance.keepAliveMs = 0;
      if (instance.users === 0) pending.push(this.unloadInstance(instance, "expired"));
    }
    await Promise.all(pending);
  }

  /** Whether a context of `model` will use flash attention, for its memory estimate ("auto": where supported). */
  private usesFlashAttention(model: LlamaModel): boolean {
    return this.flashAttention === "auto" ? model.flashAttentionSupported : this.flashAttention;
  }

  private async load(
    key: string,
    spec: InstanceSpec,
    held: Weights,
    keepAliveMs: number | null,
    tenant: string | undefined,
  ): Promise<ModelInstance> {
    // Downloads run outside the lock: only the memory bookkeeping and llama.cpp allocations are serialised.
    const adapterLeases = await Promise.all(spec.adapters.map((a) => this.options.blobs.acquire(a.digest, a.size)));
    const { projector } = spec;
    const projectorLease =
      projector && this.options.llamaServer
        ? await this.options.blobs.acquire(projector.digest, projector.size)
        : undefined;
    let vision: VisionBackend | undefined;
    try {
      return await this.withLoadLock(async () => {
        const { llama } = this.options;
        const gpuLayers = held.model.gpuLayers;
        const estimate = held.model.fileInsights.estimateContextResourceRequirements({
          contextSize: spec.numCtx,
          modelGpuLayers: gpuLayers,
          batchSize: spec.numBatch,
          sequences: this.options.parallel,
          flashAttention: this.usesFlashAttention(held.model),
        });
        const contextMemory = wholeBytes(estimate, llama.gpu !== false);
        if (projectorLease) {
          // llama-server holds its own copy of the weights and context, plus the projector.
          contextMemory.ram += held.memory.ram + contextMemory.ram + projectorLease.size;
          contextMemory.vram += held.memory.vram + contextMemory.vram;
        }
        await this.makeRoom(total(contextMemory), tenant);
        if (projectorLease) vision = await this.startVision(spec, held, projectorLease);
        const context = await held.model.createContext({
          contextSize: spec.numCtx,
          sequences: this.options.parallel,
          threads: this.options.threads,
          batchSize: spec.numBatch,
          flashAttention: this.flashAttention,
          failedCreationRemedy: false,
          lora: adapterLeases.length
            ? { adapters: adapterLeases.map((lease) => ({ filePath: lease.path })) }
            : undefined,
        });
        const instance: ModelInstance = new ModelInstance(
          key,
          spec,
          held.model,
          context,
          contextMemory,
          adapterLeases,
          {
            maxWaiting: this.options.maxWaiting ?? 64,
            threads: this.options.threads,
            tokenizer: this.options.tokenizer ?? inlineTokenizer,
            modelPath: held.blobLease.path,
            onDisposed: () => this.releaseWeights(spec.modelBlob),
          },
          keepAliveMs ?? this.defaultKeepAlive,
          vision,
        );
        held.users++;
        instance.users = 1;
        this.instances.set(key, instance);
        void vision?.server.exited.then(() => {
          if (!instance.disposed) void this.unloadInstance(instance, "crashed");
        });
        this.options.onLoad?.();
        this.options.onChange?.();
        return instance;
      });
    } catch (err) {
      await vision?.server.dispose();
      projectorLease?.release();
      for (const lease of adapterLeases) lease.release();
      throw err;
    }
  }

  private async startVision(spec: InstanceSpec, held: Weights, projectorLease: BlobLease): Promise<VisionBackend> {
    const server = await LlamaServerProcess.start({
      binary: this.options.llamaServer!,
      modelPath: held.blobLease.path,
      projectorPath: projectorLease.path,
      contextSize: spec.numCtx,
      parallel: this.options.parallel,
      threads: this.options.threads,
      flashAttention: this.flashAttention,
    }).catch((err: unknown) => {
      // A projector llama.cpp refuses (another embedding size than the model's, an unknown type) is the model's fault.
      throw new ApiError(
        400,
        `failed to load the vision projector: ${err instanceof Error ? err.message : String(err)}`,
      );
    });
    return { server, projectorLease };
  }

  private withLoadLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.loadLock.then(fn, fn);
    this.loadLock = run.catch(() => {});
    return run;
  }

  private async acquireWeights(spec: ModelSpec, tenant: string | undefined): Promise<Weights> {
    let pending = this.weights.get(spec.modelBlob);
    if (!pending) {
      pending = this.loadWeights(spec, tenant);
      this.weights.set(spec.modelBlob, pending);
      pending.catch(() => this.weights.delete(spec.modelBlob));
    }
    const weights = await pending;
    weights.users++;
    return weights;
  }

  private async loadWeights(spec: ModelSpec, tenant: string | undefined): Promise<Weights> {
    const blobLease = await this.options.blobs.acquire(spec.modelBlob, spec.modelSize);
    try {
      return await this.withLoadLock(async () => {
        const { llama } = this.options;
        // Until the file is read, its size is the best guess of what the weights take.
        await this.makeRoom(blobLease.size, tenant);
        const model = await llama.loadModel({ modelPath: blobLease.path, gpuLayers: llama.gpu === false ? 0 : "auto" });
        const estimate = model.fileInsights.estimateModelResourceRequirements({ gpuLayers: model.gpuLayers });
        const weights: Weights = {
          model,
          memory: wholeBytes(estimate, llama.gpu !== false),
          blobLease,
          users: 0,
        };
        this.loadedWeights.set(spec.modelBlob, weights);
        return weights;
      });
    } catch (err) {
      blobLease.release();
      throw err;
    }
  }

  private releaseWeights(modelBlob: string): void {
    const weights = this.loadedWeights.get(modelBlob);
    if (!weights) return;
    weights.users--;
    if (weights.users > 0) return;
    this.loadedWeights.delete(modelBlob);
    this.weights.delete(modelBlob);
    void weights.model.dispose().finally(() => weights.blobLease.release());
  }

  /**
   * Unloads idle instances `tenant` may unload (fairVictims: its own first), soonest keep_alive expiry first, until
   * `bytes` more fit in the budget.
   */
  private async makeRoom(bytes: number, tenant: string | undefined): Promise<void> {
    const budget = this.options.memoryBudgetBytes;
    if (this.memoryUsed + bytes > budget) {
      const resident = [...this.instances.values()]
        .filter((instance) => !instance.disposed)
        .sort((a, b) => a.expiresAt - b.expiresAt)
        .map((instance) => ({
          instance,
          size: this.sizeOf(instance),
          tenant: instance.tenant,
          idle: instance.users === 0,
        }));
      for (const { instance } of fairVictims(resident, tenant, budget, bytes)) {
        if (this.memoryUsed + bytes <= budget) break;
        if (instance.users === 0 && !instance.disposed) await this.unloadInstance(instance, "memory");
      }
    }
    if (this.memoryUsed + bytes <= budget) return;
    if (this.instances.size === 0 && this.memoryUsed === 0) {
      throw new ApiError(500, `model requires more memory (${bytes} bytes) than the runner's budget (${budget} bytes)`);
    }
    throw busy("runner memory is in use by other requests, please try again");
  }

  private async unloadInstance(instance: ModelInstance, reason: UnloadReason): Promise<void> {
    this.timers.get(instance)?.cancel();
    this.timers.delete(instance);
    const wasLoaded = this.instances.get(instance.key) === instance;
    if (wasLoaded) {
      this.instances.delete(instance.key);
      this.options.onUnload?.(reason);
    }
    await instance.dispose();
    this.options.onChange?.();
  }

  /** What an instance holds: its context, and its weights (shared with the blob's other instances). */
  private sizeOf(instance: ModelInstance): number {
    const weights = this.loadedWeights.get(instance.spec.modelBlob);
    return total(weights?.memory ?? { ram: 0, vram: 0 }) + total(instance.contextMemory);
  }

  /** Loaded instances for the heartbeat and /v1/ps. */
  ps(): LoadedModel[] {
    const now = this.clock.now();
    return [...this.instances.values()].map((instance) => {
      const weights = this.loadedWeights.get(instance.spec.modelBlob);
      const weightsMemory = weights?.memory ?? { ram: 0, vram: 0 };
      const idle = instance.users === 0;
      const expiresAt = idle ? instance.expiresAt : now + instance.keepAliveMs;
      return {
        model_blob: instance.spec.modelBlob,
        size: this.sizeOf(instance),
        size_vram: weightsMemory.vram + instance.contextMemory.vram,
        context_length: instance.spec.numCtx,
        expires_at: Number.isFinite(expiresAt) ? new Date(expiresAt).toISOString() : FOREVER_ISO,
        busy_sequences: instance.busySequences,
        sequences: instance.totalSequences,
        ...(instance.tenant ? { tenant: instance.tenant } : {}),
      };
    });
  }

  /** Stops accepting work and unloads everything (shutdown). Idempotent. */
  async dispose(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.loading.values()]);
    await Promise.all([...this.instances.values()].map((instance) => this.unloadInstance(instance, "shutdown")));
  }
}
