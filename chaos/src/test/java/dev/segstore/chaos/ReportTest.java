package dev.segstore.chaos;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ReportTest {
    private static final long MS = 1_000_000;

    /** Writes during a partition; one acknowledged write is missing from the final read. */
    private static History lostWriteDuringAPartition() {
        Script s = new Script();
        for (int i = 0; i < 20; i++) {
            s.write("c" + (i % 3), i * 50 * MS, i * 50 * MS + (1 + i) * MS, "s0", "p" + i, i);
        }
        s.info("c1", 1_000 * MS, 1_500 * MS, Invocation.write("s0", WrittenRecord.of("p20")), "TIMEOUT");
        s.fault("partition", 400 * MS, 900 * MS, "isolate n1 <from> n2 & n3");
        ReadRecord[] all = new ReadRecord[19];
        for (int i = 0; i < 19; i++) {
            all[i] = Script.at(i, "p" + i);
        }
        s.finalRead(2_000 * MS, 2_010 * MS, "s0", 0, 100, all);
        return s.history();
    }

    @Test
    void theHtmlReportShowsFaultsAnomaliesAndCharts(@TempDir Path dir) throws IOException {
        History h = lostWriteDuringAPartition();
        List<Anomaly> anomalies = Checker.check(h);
        assertEquals(1, anomalies.size(), anomalies::toString);
        Path file = dir.resolve("report.html");
        Report.write(file, h, anomalies);
        String html = Files.readString(file);
        assertTrue(html.contains("<svg"), "no chart");
        assertTrue(html.contains(Report.escape(anomalies.get(0).explanation())), "no explanation");
        assertTrue(html.contains("LOST_WRITE"));
        assertTrue(html.contains("isolate n1 &lt;from&gt; n2 &amp; n3"), "fault description not shown or not escaped");
        assertFalse(html.contains("<script") || html.contains("http://") && !html.contains("http://www.w3.org/2000/svg"),
                "the report must be self-contained");
    }

    @Test
    void theSummaryTableCountsOperationsAndAnomalies() {
        History h = lostWriteDuringAPartition();
        String table = Report.summaryTable(h, Checker.check(h));
        assertTrue(table.contains("WRITE      20     0     1     21"), table);
        assertTrue(table.contains("LOST_WRITE      1"), table);
        assertTrue(table.contains("p99.9"), table);
    }
}
