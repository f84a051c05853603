package dev.segstore.node.server;

import dev.segstore.chaos.Report;
import dev.segstore.chaos.SvgChart;
import org.HdrHistogram.Histogram;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The self-contained HTML report of a {@code segstore-perf} run ({@code --report}): the settings, a table of latency
 * percentiles, throughput and latency (p50, p99, max) over time, one point per measured second, and the latency
 * percentile distribution (x: how many nines, so the tail is spread out as HdrHistogram's plots do). Inline SVG
 * only: it opens in any browser, offline.
 */
final class PerfReport {
    /** One measured second: when it ended (s after the warm-up), acknowledged records, latency percentiles in ms. */
    record Interval(double atSeconds, long records, double p50Ms, double p99Ms, double maxMs) {
    }

    private static final double[] TABLE = {50, 90, 99, 99.9, 99.99, 100};

    private PerfReport() {
    }

    static void write(Path file, String title, String settings, List<Interval> intervals, Histogram total, double recordsPerSecond)
            throws IOException {
        StringBuilder html = new StringBuilder();
        html.append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>").append(Report.escape(title))
                .append("</title><style>body{font-family:sans-serif;margin:20px}td,th{padding:2px 10px;text-align:right}"
                        + "th{background:#eee}</style></head><body>\n");
        html.append("<h1>").append(Report.escape(title)).append("</h1>\n<p><code>").append(Report.escape(settings)).append("</code></p>\n");
        html.append(String.format(Locale.ROOT, "<p>%,.0f records/s acknowledged over the measured seconds; %,d calls measured.</p>%n",
                recordsPerSecond, total.getTotalCount()));
        html.append("<table><tr><th>percentile</th><th>latency ms</th></tr>\n");
        for (double p : TABLE) {
            html.append(String.format(Locale.ROOT, "<tr><td>%s</td><td>%.3f</td></tr>%n", p == 100 ? "max" : "p" + trim(p),
                    total.getValueAtPercentile(p) / 1e6));
        }
        html.append(String.format(Locale.ROOT, "<tr><td>mean</td><td>%.3f</td></tr></table>%n", total.getMean() / 1e6));

        double seconds = intervals.isEmpty() ? 1 : intervals.get(intervals.size() - 1).atSeconds();
        double[] xs = intervals.stream().mapToDouble(Interval::atSeconds).toArray();
        double[] rate = intervals.stream().mapToDouble(i -> i.records()).toArray();
        double maxRate = java.util.Arrays.stream(rate).max().orElse(1);
        SvgChart throughput = new SvgChart(seconds, 0, maxRate, false, "records/s");
        throughput.series(xs, rate, "#1f77b4", "acknowledged records/s");
        html.append("<h2>Throughput over time</h2>\n").append(throughput.end());

        double[] p50 = intervals.stream().mapToDouble(Interval::p50Ms).toArray();
        double[] p99 = intervals.stream().mapToDouble(Interval::p99Ms).toArray();
        double[] max = intervals.stream().mapToDouble(Interval::maxMs).toArray();
        double lowest = java.util.Arrays.stream(p50).filter(v -> v > 0).min().orElse(0.1);
        double highest = java.util.Arrays.stream(max).max().orElse(1);
        SvgChart latency = new SvgChart(seconds, lowest, highest, true, "latency ms (log)");
        latency.series(xs, p50, "#2ca02c", "p50");
        latency.series(xs, p99, "#ff7f0e", "p99");
        latency.series(xs, max, "#d62728", "max");
        html.append("<h2>Latency over time (each second's calls)</h2>\n").append(latency.end());

        // x = nines: 0 is p0, 1 is p90, 2 is p99, ... 5 is p99.999.
        int points = 200;
        double[] nines = new double[points + 1];
        double[] at = new double[points + 1];
        for (int i = 0; i <= points; i++) {
            nines[i] = 5.0 * i / points;
            double percentile = 100 * (1 - Math.pow(10, -nines[i]));
            at[i] = total.getTotalCount() == 0 ? Double.NaN : total.getValueAtPercentile(percentile) / 1e6;
        }
        SvgChart distribution = new SvgChart(5, Math.max(total.getMinValue() / 1e6, 1e-3), Math.max(total.getMaxValue() / 1e6, 1e-3), true,
                "latency ms (log)").xLabels(n -> "p" + trim(100 * (1 - Math.pow(10, -n))));
        distribution.series(nines, at, "#9467bd", "latency at percentile");
        html.append("<h2>Latency by percentile</h2>\n").append(distribution.end());
        html.append("</body></html>\n");
        Files.writeString(file, html, StandardCharsets.UTF_8);
    }

    private static String trim(double p) {
        return new java.math.BigDecimal(p).round(new java.math.MathContext(6)).stripTrailingZeros().toPlainString();
    }
}
