package dev.segstore.chaos;

import java.math.BigDecimal;
import java.math.MathContext;
import java.util.Locale;

/**
 * One inline SVG chart over time for the {@link Report}: shaded bands (faults), lines (series, NaN = gap) and
 * vertical markers (anomalies), then axes and a legend. The y axis is linear from 0, or logarithmic over whole
 * decades. Drawing order is the call order, so bands go first. Public for other reports (segstore-perf's), whose
 * x axis need not be time ({@link #xLabels}).
 */
public final class SvgChart {
    private static final int WIDTH = 1000;
    private static final int HEIGHT = 260;
    private static final int LEFT = 70;
    private static final int RIGHT = 20;
    private static final int TOP = 24;
    private static final int BOTTOM = 32;

    private final StringBuilder svg = new StringBuilder();
    private final StringBuilder legend = new StringBuilder();
    private final double seconds;
    private final boolean log;
    private final double yMin;
    private final double yMax;
    private final String yLabel;
    private int legendX = LEFT;
    private java.util.function.DoubleFunction<String> xLabel = t -> String.format(Locale.ROOT, "%.1fs", t);

    /** A chart of {@code seconds} across; y up to {@code yMax} (log: from {@code yMin}, both rounded to decades). */
    public SvgChart(double seconds, double yMin, double yMax, boolean log, String yLabel) {
        this.seconds = Math.max(seconds, 0.1);
        this.log = log;
        this.yMin = log ? Math.pow(10, Math.floor(Math.log10(Math.max(yMin, 1e-3)))) : 0;
        double top = log ? Math.pow(10, Math.ceil(Math.log10(Math.max(yMax, this.yMin * 10)))) : Math.max(yMax, 1) * 1.1;
        this.yMax = top;
        this.yLabel = yLabel;
        svg.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                + "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">%n", WIDTH, HEIGHT, WIDTH, HEIGHT));
    }

    /** How the x axis's 11 ticks (0 to the width given as seconds) are labelled; seconds ("2.5s") unless set. */
    public SvgChart xLabels(java.util.function.DoubleFunction<String> label) {
        this.xLabel = label;
        return this;
    }

    public void band(double from, double to, String color, String label, String tooltip) {
        double x1 = x(from);
        double x2 = Math.max(x(to), x1 + 1);
        svg.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\" "
                + "fill-opacity=\"0.18\"><title>%s</title></rect>%n", x1, TOP, x2 - x1, HEIGHT - TOP - BOTTOM, color,
                Report.escape(tooltip)));
        svg.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" fill=\"%s\">%s</text>%n", x1 + 2, TOP + 11,
                color, Report.escape(label)));
    }

    public void series(double[] xs, double[] ys, String color, String name) {
        StringBuilder d = new StringBuilder();
        boolean pen = false;
        for (int i = 0; i < xs.length; i++) {
            if (Double.isNaN(ys[i]) || (log && ys[i] <= 0)) {
                pen = false;
                continue;
            }
            d.append(pen ? 'L' : 'M').append(String.format(Locale.ROOT, "%.1f,%.1f ", x(xs[i]), y(ys[i])));
            pen = true;
        }
        svg.append("<path fill=\"none\" stroke-width=\"1.3\" stroke=\"").append(color).append("\" d=\"")
                .append(d.toString().trim()).append("\"/>\n");
        legend.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"3\" fill=\"%s\"/>"
                + "<text x=\"%d\" y=\"%d\">%s</text>%n", legendX, HEIGHT - 8, color, legendX + 16, HEIGHT - 4, name));
        legendX += 24 + 7 * name.length();
    }

    /** A vertical line at {@code at}; its label in text row {@code row} (0..3 from the top), so neighbours overlap less. */
    public void marker(double at, String color, String label, int row, String tooltip) {
        double x = x(at);
        svg.append(String.format(Locale.ROOT, "<g><title>%s</title><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
                + "stroke=\"%s\" stroke-dasharray=\"3,2\"/><text x=\"%.1f\" y=\"%d\" fill=\"%s\">%s</text></g>%n",
                Report.escape(tooltip), x, x, TOP, HEIGHT - BOTTOM, color, x + 2, TOP + 24 + 12 * row, color,
                Report.escape(label)));
    }

    public String end() {
        int bottom = HEIGHT - BOTTOM;
        svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"black\"/>%n",
                LEFT, WIDTH - RIGHT, bottom, bottom));
        svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"black\"/>%n",
                LEFT, LEFT, TOP, bottom));
        for (int i = 0; i <= 10; i++) {
            double t = seconds * i / 10;
            svg.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>%n",
                    x(t), bottom + 13, Report.escape(xLabel.apply(t))));
        }
        for (double v : yTicks()) {
            svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                    + "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>%n", LEFT, WIDTH - RIGHT, y(v), y(v),
                    LEFT - 4, y(v) + 4, format(v)));
        }
        svg.append(String.format(Locale.ROOT, "<text x=\"4\" y=\"%d\">%s</text>%n", TOP - 8, Report.escape(yLabel)));
        return svg.append(legend).append("</svg>\n").toString();
    }

    private double[] yTicks() {
        if (log) {
            int decades = (int) Math.round(Math.log10(yMax / yMin));
            double[] ticks = new double[decades + 1];
            for (int i = 0; i <= decades; i++) {
                ticks[i] = yMin * Math.pow(10, i);
            }
            return ticks;
        }
        double[] ticks = new double[5];
        for (int i = 0; i < 5; i++) {
            ticks[i] = yMax * i / 4;
        }
        return ticks;
    }

    private static String format(double v) {
        return new BigDecimal(v).round(new MathContext(3)).stripTrailingZeros().toPlainString();
    }

    private double x(double t) {
        return LEFT + (WIDTH - LEFT - RIGHT) * Math.min(Math.max(t / seconds, 0), 1);
    }

    private double y(double v) {
        double f = log ? Math.log10(Math.max(v, yMin) / yMin) / Math.log10(yMax / yMin) : v / yMax;
        return HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * Math.min(f, 1);
    }
}
