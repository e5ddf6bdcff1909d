/**
 * Adapter to the Go text/template engine in ../template (Ollama's prompt logic): the only place that knows
 * its API, so the rest of inference/ speaks in messages, tools and think values.
 */
import type { Message, Tool } from "@corral/protocol/schema-fields";

export interface TemplateCapabilities {
  insert: boolean;
  tools: boolean;
  thinking: boolean;
}

export function goTemplateCapabilities(template: string): TemplateCapabilities {
  return {
    insert: template.includes(".Suffix"),
    tools: template.includes(".Tools"),
    thinking: template.includes(".Think"),
  };
}

export interface GenerateValues {
  messages: readonly Message[];
  prompt: string;
  system?: string;
  suffix?: string;
  think?: boolean | string;
}

export function renderGoGenerate(_template: string, _values: GenerateValues): string {
  throw new Error("template engine not wired yet");
}

export interface ChatValues {
  messages: readonly Message[];
  tools: readonly Tool[];
  think?: boolean | string;
}

export function renderGoChat(_template: string, _values: ChatValues): string {
  throw new Error("template engine not wired yet");
}
