/** One part of `docs/benchmarks.md`, produced by one benchmark module. */
export interface BenchSection {
  /** The heading of the section, e.g. "Service Bus emulator". */
  title: string;
  /** Markdown body: what was measured, how, a table of figures, the targets and whether each was met. */
  markdown: string;
}
