// A time-series chart (uPlot) of one or more metric series: history from `metrics`, then each
// new sample from `metricsLive` appended as it arrives.
import { useEffect, useMemo, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useQuery, useSubscription } from '../api';
import { graphql } from '../gql';
import type { MetricSeriesInput } from '../gql/graphql';
import { ErrorBox, fmtBytes, fmtNum } from '../ui';

const Metrics = graphql(`
  query Metrics($series: [MetricSeriesInput!]!, $from: DateTime!, $step: Int) {
    metrics(series: $series, from: $from, step: $step) {
      step
      resolution
      columns {
        at
        value
      }
    }
  }
`);

const Live = graphql(`
  subscription MetricsLive($series: [MetricSeriesInput!]!) {
    metricsLive(series: $series) {
      at
      value
      series {
        metric
        stream
        consumer
      }
    }
  }
`);

const RANGE_S: Record<string, number> = { '15m': 900, '1h': 3600, '6h': 21600, '24h': 86400, '7d': 604800 };

export function Chart({
  title,
  series,
  range,
  unit,
  labels,
}: {
  title: string;
  series: MetricSeriesInput[];
  range: string;
  unit?: 'bytes';
  labels?: string[];
}) {
  const seconds = RANGE_S[range] ?? 3600;
  const step = Math.max(10, Math.round(seconds / 240));
  const from = useMemo(() => new Date(Date.now() - seconds * 1000).toISOString(), [seconds]);
  const q = useQuery(Metrics, { series, from, step });
  const [live, setLive] = useState<[number, number][][]>(series.map(() => []));
  useEffect(() => setLive(series.map(() => [])), [from, series.length]);
  useSubscription(Live, { series }, (d) => {
    const v = d.metricsLive;
    const i = series.findIndex((s) => s.metric === v.series.metric && (s.stream ?? null) === (v.series.stream ?? null) && (s.consumer ?? null) === (v.series.consumer ?? null));
    if (i >= 0) setLive((l) => l.map((pts, j) => (j === i ? [...pts, [Date.parse(v.at) / 1000, v.value] as [number, number]].slice(-2000) : pts)));
  });
  const data = useMemo(() => {
    if (!q.data) return null;
    // Align every series on the union of their timestamps (uPlot's shape).
    const all = q.data.metrics.map((m, i) => {
      const pts = m.columns.at.map((t, k) => [t / 1000, m.columns.value[k]] as [number, number]);
      return [...pts, ...(live[i] ?? [])];
    });
    const xs = [...new Set(all.flatMap((p) => p.map(([t]) => t)))].sort((a, b) => a - b);
    const ys = all.map((pts) => {
      const m = new Map(pts);
      return xs.map((x) => m.get(x) ?? null);
    });
    return [xs, ...ys] as uPlot.AlignedData;
  }, [q.data, live]);
  const last = data && data[0].length ? (data[1] as (number | null)[]).filter((v) => v != null).slice(-1)[0] : null;
  const fmt = (v: number | null | undefined) => (v == null ? '—' : unit === 'bytes' ? fmtBytes(Math.round(v)) : fmtNum(Math.round(v * 100) / 100));
  return (
    <figure className="card chart">
      <figcaption>
        <h3>{title}</h3>
        <span className="muted small" aria-live="polite">
          now {fmt(last)}
        </span>
      </figcaption>
      <ErrorBox error={q.error} />
      {data && data[0].length === 0 && <p className="muted small">No samples in this range yet: the collector samples every 10 s.</p>}
      {data && data[0].length > 0 && (
        <Plot data={data} from={Date.parse(from) / 1000} labels={labels ?? series.map((s) => s.consumer ?? s.stream ?? s.metric)} fmt={fmt} title={title} />
      )}
    </figure>
  );
}

function Plot({ data, from, labels, fmt, title }: { data: uPlot.AlignedData; from: number; labels: string[]; fmt: (v: number) => string; title: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    const el = box.current!;
    const colors = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6'];
    plot.current = new uPlot(
      {
        width: el.clientWidth || 480,
        height: 200,
        legend: { show: labels.length > 1 },
        // The whole range asked for, up to now: one early sample is not a chart of years.
        scales: { x: { time: true, range: () => [from, Date.now() / 1000] }, y: { range: (_u, min, max) => [Math.min(0, min), Math.max(1, max * 1.1)] } },
        axes: [{ stroke: 'currentColor' }, { stroke: 'currentColor', values: (_u, vs) => vs.map((v) => fmt(v)), size: 70 }],
        series: [{}, ...labels.map((l, i) => ({ label: l, stroke: colors[i % colors.length], width: 2, spanGaps: true }))],
      },
      data,
      el,
    );
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: el.clientWidth, height: 200 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [labels.join('|')]);
  useEffect(() => plot.current?.setData(data), [data]);
  return <div ref={box} className="plot" role="img" aria-label={`${title} chart`} />;
}
