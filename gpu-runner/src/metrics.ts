/**
 * Prometheus text exposition for GET /metrics: request and token counters kept here, gauges read from the
 * pool and cache at scrape time.
 */

export interface MetricGauges {
  busySequences: number;
  totalSequences: number;
  loadedModels: number;
  cacheBytes: number;
  memoryUsedBytes: number;
  draining: boolean;
}

type Labels = Record<string, string>;

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const formatLabels = (labels: Labels) => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
};

class Counter {
  private readonly values = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels, by = 1): void {
    const key = formatLabels(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  get(labels: Labels): number {
    return this.values.get(formatLabels(labels)) ?? 0;
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [labels, value] of this.values) lines.push(`${this.name}${labels} ${value}`);
    return lines;
  }
}

const gauge = (name: string, help: string, value: number) => [
  `# HELP ${name} ${help}`,
  `# TYPE ${name} gauge`,
  `${name} ${value}`,
];

export class RunnerMetrics {
  readonly requests = new Counter("corral_runner_requests_total", "Inference requests by endpoint and status.");
  readonly promptTokens = new Counter("corral_runner_prompt_tokens_total", "Prompt tokens evaluated.");
  readonly generatedTokens = new Counter("corral_runner_generated_tokens_total", "Tokens generated.");
  readonly loads = new Counter("corral_runner_model_loads_total", "Model instances loaded.");
  readonly unloads = new Counter("corral_runner_model_unloads_total", "Model instances unloaded, by reason.");
  readonly jobs = new Counter("corral_runner_jobs_total", "Jobs (quantize) by kind and outcome status.");

  recordRequest(endpoint: string, status: number): void {
    this.requests.inc({ endpoint, status: String(status) });
  }

  /** A job's outcome: 200 when it delivered its result, else the failure's status (499 cancelled). */
  recordJob(kind: string, status: number): void {
    this.jobs.inc({ kind, status: String(status) });
  }

  recordTokens(endpoint: string, prompt: number, generated: number): void {
    if (prompt > 0) this.promptTokens.inc({ endpoint }, prompt);
    if (generated > 0) this.generatedTokens.inc({ endpoint }, generated);
  }

  render(gauges: MetricGauges): string {
    return [
      ...this.requests.render(),
      ...this.promptTokens.render(),
      ...this.generatedTokens.render(),
      ...this.loads.render(),
      ...this.unloads.render(),
      ...this.jobs.render(),
      ...gauge("corral_runner_busy_sequences", "Sequences generating right now.", gauges.busySequences),
      ...gauge("corral_runner_sequences", "Sequences of all loaded models.", gauges.totalSequences),
      ...gauge("corral_runner_loaded_models", "Model instances loaded.", gauges.loadedModels),
      ...gauge("corral_runner_blob_cache_bytes", "Bytes in the blob cache.", gauges.cacheBytes),
      ...gauge("corral_runner_memory_used_bytes", "Memory budget used by loaded models.", gauges.memoryUsedBytes),
      ...gauge("corral_runner_draining", "1 while the runner drains before shutdown.", gauges.draining ? 1 : 0),
      "",
    ].join("\n");
  }
}
