/** Small text helpers shared by the console output and the HTML report. */

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A number in at most `digits` significant digits, without trailing zeros: 0.1235, 1.2e-6, 12346. */
export function formatNumber(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(digits - 1).replace(/\.?0+e/, 'e');
  if (a >= 10 ** digits) return String(Math.round(v));
  return String(Number(v.toPrecision(digits)));
}

/** Seconds as a short duration: 42s, 6m 21s, 2h 05m. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A count with a K/M/B suffix: 830K, 1.2M. */
export function formatCount(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${formatNumber(n / 1e9, 3)}B`;
  if (a >= 1e6) return `${formatNumber(n / 1e6, 3)}M`;
  if (a >= 1e3) return `${formatNumber(n / 1e3, 3)}K`;
  return String(n);
}

/** A config value as compact text: numbers shortened, strings bare unless they need quotes. */
export function formatValue(v: unknown): string {
  if (typeof v === 'number') return formatNumber(v, 6);
  if (typeof v === 'string') return v === '' || /[\s"=,]/.test(v) ? JSON.stringify(v) : v;
  if (v === undefined) return 'undefined';
  return JSON.stringify(v) ?? String(v);
}

/**
 * Nested config flattened to sorted `[dotted.path, value]` pairs. Arrays stay whole values;
 * empty objects appear as `{}`.
 */
export function flattenConfig(config: Readonly<Record<string, unknown>>): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  const walk = (obj: Readonly<Record<string, unknown>>, prefix: string): void => {
    for (const [k, v] of Object.entries(obj)) {
      const path = prefix ? `${prefix}.${k}` : k;
      if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) walk(v as Record<string, unknown>, path);
      else out.push([path, v]);
    }
  };
  walk(config, '');
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}
