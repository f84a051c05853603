package dev.segstore.chaos;

import org.HdrHistogram.Histogram;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What a run looked like, for people: a self-contained HTML page (inline CSS and SVG, nothing fetched) with
 * a summary at the top (operations by type and outcome, anomalies by kind, latency percentiles), throughput
 * and latency per {@value Timeline#BUCKET_MS} ms with the fault intervals shaded and each anomaly marked at
 * its operations' invocation times, the faults, and the anomalies with their explanations. The same summary
 * as plain text is {@link #summaryTable(History, List)}.
 */
public final class Report {
    private static final String[] FAULT_COLORS = {"#8e44ad", "#2c7fb8", "#e67e22", "#16a085", "#c0392b", "#7f8c8d"};
    private static final String ANOMALY_COLOR = "#d62728";

    private Report() {
    }

    /** Writes {@link #html(History, List)} to {@code file}. */
    public static void write(Path file, History history, List<Anomaly> anomalies) throws IOException {
        Files.writeString(file, html(history, anomalies), StandardCharsets.UTF_8);
    }

    /** The summary tables as plain text, for a console. */
    public static String summaryTable(History history, List<Anomaly> anomalies) {
        List<Op> ops = history.ops();
        StringBuilder sb = new StringBuilder();
        for (List<String[]> table : summary(ops, anomalies, timeline(history, ops))) {
            int[] widths = new int[table.get(0).length];
            table.forEach(row -> {
                for (int i = 0; i < row.length; i++) {
                    widths[i] = Math.max(widths[i], row[i].length());
                }
            });
            for (String[] row : table) {
                for (int i = 0; i < row.length; i++) {
                    sb.append(i == 0 ? String.format("%-" + widths[i] + "s", row[i]) : String.format("  %" + widths[i] + "s", row[i]));
                }
                sb.append('\n');
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    /** The report page. */
    public static String html(History history, List<Anomaly> anomalies) {
        List<Op> ops = history.ops();
        List<Fault> faults = history.faults();
        Timeline timeline = timeline(history, ops);
        Map<Long, Op> byId = new HashMap<>();
        ops.forEach(op -> byId.put(op.id(), op));
        Map<String, String> faultColors = new HashMap<>();
        faults.forEach(f -> faultColors.computeIfAbsent(f.kind(), k -> FAULT_COLORS[faultColors.size() % FAULT_COLORS.length]));

        StringBuilder sb = new StringBuilder();
        sb.append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>segstore fault run</title>\n<style>\n")
                .append("body{font-family:sans-serif;margin:24px;max-width:1060px}table{border-collapse:collapse;margin:0 24px 16px 0;")
                .append("display:inline-table;vertical-align:top}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}")
                .append("td:first-child,th:first-child{text-align:left}.kind{color:").append(ANOMALY_COLOR)
                .append(";font-weight:bold}li{margin-bottom:6px}\n</style></head><body>\n");
        sb.append("<h1>Fault run</h1>\n<p>").append(ops.size()).append(" operations over ")
                .append(String.format(Locale.ROOT, "%.1f", timeline.buckets * Timeline.BUCKET_MS / 1000.0)).append(" s, ")
                .append(faults.size()).append(" faults, ").append(anomalies.size()).append(" anomalies.</p>\n<h2>Summary</h2>\n");
        for (List<String[]> table : summary(ops, anomalies, timeline)) {
            htmlTable(sb, table);
        }

        charts(sb, timeline, faults, faultColors, anomalies, byId);
        faultList(sb, timeline, faults, faultColors);
        anomalyList(sb, anomalies);
        return sb.append("</body></html>\n").toString();
    }

    /** Throughput and latency over time, with the faults shaded and the anomalies' operations marked. */
    private static void charts(StringBuilder sb, Timeline timeline, List<Fault> faults, Map<String, String> faultColors,
                               List<Anomaly> anomalies, Map<Long, Op> byId) {
        double span = timeline.buckets * Timeline.BUCKET_MS / 1000.0;
        double[] xs = new double[timeline.buckets];
        for (int b = 0; b < xs.length; b++) {
            xs[b] = (b + 0.5) * Timeline.BUCKET_MS / 1000.0;
        }
        double perSecond = 1000.0 / Timeline.BUCKET_MS;
        double maxRate = 0;
        EnumMap<Outcome, double[]> rates = new EnumMap<>(Outcome.class);
        for (Outcome o : Outcome.values()) {
            double[] r = new double[timeline.buckets];
            for (int b = 0; b < r.length; b++) {
                r[b] = timeline.completed[b][o.ordinal()] * perSecond;
                maxRate = Math.max(maxRate, r[b]);
            }
            rates.put(o, r);
        }
        SvgChart throughput = new SvgChart(span, 0, maxRate, false, "operations/s");
        SvgChart latency = new SvgChart(span, minPositive(timeline.p50) / 1000.0, maxOf(timeline.max) / 1000.0, true, "latency ms");
        List<SvgChart> both = List.of(throughput, latency);
        for (Fault f : faults) {
            both.forEach(chart -> chart.band(timeline.seconds(f.startNanos()), timeline.seconds(f.stopNanos()),
                    faultColors.get(f.kind()), f.kind(), f.kind() + ": " + f.description()));
        }
        throughput.series(xs, rates.get(Outcome.OK), "#2a9d3f", "ok");
        throughput.series(xs, rates.get(Outcome.FAIL), "#d62728", "fail");
        throughput.series(xs, rates.get(Outcome.INFO), "#ff9f1c", "info");
        latency.series(xs, millis(timeline.p50), "#1f77b4", "p50");
        latency.series(xs, millis(timeline.p99), "#9467bd", "p99");
        latency.series(xs, millis(timeline.max), "#7f7f7f", "max");
        // One marker per operation involved, at its invocation, naming the anomalies it is part of.
        Map<Long, List<Integer>> marked = new LinkedHashMap<>();
        for (int i = 0; i < anomalies.size(); i++) {
            for (long id : anomalies.get(i).opIds()) {
                if (byId.containsKey(id)) {
                    marked.computeIfAbsent(id, x -> new ArrayList<>()).add(i + 1);
                }
            }
        }
        int row = 0;
        for (Map.Entry<Long, List<Integer>> m : marked.entrySet()) {
            List<Integer> numbers = m.getValue();
            String label = "A" + numbers.get(0) + (numbers.size() > 1 ? "+" : "");
            StringBuilder tooltip = new StringBuilder("op " + m.getKey());
            numbers.forEach(n -> tooltip.append("\nA").append(n).append(' ').append(anomalies.get(n - 1).kind())
                    .append(": ").append(anomalies.get(n - 1).explanation()));
            int r = row++ % 4;
            both.forEach(chart -> chart.marker(timeline.seconds(byId.get(m.getKey()).invokeNanos()), ANOMALY_COLOR,
                    label, r, tooltip.toString()));
        }
        sb.append("<h2>Throughput</h2>\n").append(throughput.end());
        sb.append("<h2>Latency</h2>\n").append(latency.end());
    }

    private static void faultList(StringBuilder sb, Timeline timeline, List<Fault> faults, Map<String, String> faultColors) {
        sb.append("<h2>Faults</h2>\n");
        if (faults.isEmpty()) {
            sb.append("<p>none</p>\n");
            return;
        }
        sb.append("<ul>\n");
        for (Fault f : faults) {
            sb.append(String.format(Locale.ROOT, "<li><b style=\"color:%s\">%s</b> %.2f s – %.2f s: %s</li>%n",
                    faultColors.get(f.kind()), escape(f.kind()), timeline.seconds(f.startNanos()),
                    timeline.seconds(f.stopNanos()), escape(f.description())));
        }
        sb.append("</ul>\n");
    }

    private static void anomalyList(StringBuilder sb, List<Anomaly> anomalies) {
        sb.append("<h2>Anomalies</h2>\n");
        if (anomalies.isEmpty()) {
            sb.append("<p>none</p>\n");
            return;
        }
        sb.append("<ol>\n");
        for (int i = 0; i < anomalies.size(); i++) {
            Anomaly a = anomalies.get(i);
            sb.append("<li id=\"A").append(i + 1).append("\"><span class=\"kind\">A").append(i + 1).append(' ')
                    .append(a.kind()).append("</span> ops ").append(a.opIds()).append(": ")
                    .append(escape(a.explanation())).append("</li>\n");
        }
        sb.append("</ol>\n");
    }

    /** Escapes text for HTML and SVG content and attribute values. */
    public static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }

    private static Timeline timeline(History history, List<Op> ops) {
        List<Event> events = history.events();
        long origin = events.stream().mapToLong(Event::nanos).min().orElse(0);
        long end = events.stream().mapToLong(Event::nanos).max().orElse(0);
        return new Timeline(ops, origin, end);
    }

    /** The summary: three tables, each a header row and rows of cells. */
    private static List<List<String[]>> summary(List<Op> ops, List<Anomaly> anomalies, Timeline timeline) {
        return List.of(operations(ops), anomalyCounts(anomalies), latency(timeline.overall));
    }

    private static List<String[]> operations(List<Op> ops) {
        Map<OpType, long[]> counts = new EnumMap<>(OpType.class);
        long[] total = new long[Outcome.values().length];
        for (Op op : ops) {
            counts.computeIfAbsent(op.type(), t -> new long[Outcome.values().length])[op.outcome().ordinal()]++;
            total[op.outcome().ordinal()]++;
        }
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"operation", "ok", "fail", "info", "total"});
        counts.forEach((type, c) -> rows.add(countRow(type.name(), c)));
        rows.add(countRow("all", total));
        return rows;
    }

    private static String[] countRow(String name, long[] c) {
        return new String[] {name, String.valueOf(c[0]), String.valueOf(c[1]), String.valueOf(c[2]),
                String.valueOf(c[0] + c[1] + c[2])};
    }

    private static List<String[]> anomalyCounts(List<Anomaly> anomalies) {
        Map<Anomaly.Kind, Integer> counts = new EnumMap<>(Anomaly.Kind.class);
        anomalies.forEach(a -> counts.merge(a.kind(), 1, Integer::sum));
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"anomaly", "count"});
        counts.forEach((kind, n) -> rows.add(new String[] {kind.name(), String.valueOf(n)}));
        if (counts.isEmpty()) {
            rows.add(new String[] {"none", "0"});
        }
        return rows;
    }

    private static List<String[]> latency(Histogram h) {
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"latency ms", "p50", "p90", "p99", "p99.9", "max", "count"});
        rows.add(new String[] {"completed ops", ms(h.getValueAtPercentile(50)), ms(h.getValueAtPercentile(90)),
                ms(h.getValueAtPercentile(99)), ms(h.getValueAtPercentile(99.9)), ms(h.getMaxValue()),
                String.valueOf(h.getTotalCount())});
        return rows;
    }

    private static void htmlTable(StringBuilder sb, List<String[]> rows) {
        sb.append("<table>\n");
        for (int r = 0; r < rows.size(); r++) {
            String cell = r == 0 ? "th" : "td";
            sb.append("<tr>");
            for (String v : rows.get(r)) {
                sb.append('<').append(cell).append('>').append(escape(v)).append("</").append(cell).append('>');
            }
            sb.append("</tr>\n");
        }
        sb.append("</table>\n");
    }

    private static String ms(long micros) {
        return String.format(Locale.ROOT, "%.2f", micros / 1000.0);
    }

    private static double[] millis(long[] micros) {
        double[] ms = new double[micros.length];
        for (int i = 0; i < ms.length; i++) {
            ms[i] = micros[i] == 0 ? Double.NaN : micros[i] / 1000.0;
        }
        return ms;
    }

    private static double minPositive(long[] values) {
        long min = Long.MAX_VALUE;
        for (long v : values) {
            if (v > 0) {
                min = Math.min(min, v);
            }
        }
        return min == Long.MAX_VALUE ? 1 : min;
    }

    private static double maxOf(long[] values) {
        long max = 1;
        for (long v : values) {
            max = Math.max(max, v);
        }
        return max;
    }
}
