package dev.segstore.chaos;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HistoryTest {

    /** Every operation type and outcome, a fault, odd characters, and one operation left in flight. */
    private static History everyKindOfEvent() {
        AtomicLong clock = new AtomicLong();
        History h = new History(() -> clock.addAndGet(7));
        WrittenRecord odd = new WrittenRecord("p\"1\\\n\u0001é", "k,1", List.of("a", "t:{}"));
        h.ok(h.invoke("c1", Invocation.write("s0", odd)), Result.offsets(0));
        h.ok(h.invoke("c1", Invocation.batchWrite("s0", List.of(WrittenRecord.of("p2"), WrittenRecord.of("p3")))),
                Result.offsets(1, 2));
        h.nemesisStart("partition", "isolate n2 from n1, n3");
        h.ok(h.invoke("c2", Invocation.read("s0", 0, 10)), Result.records(List.of(
                new ReadRecord(0, odd.payload(), odd.key(), odd.tags()), ReadRecord.of(1, "p2"))));
        h.ok(h.invoke("c2", Invocation.readTag("s0", "a", 0, 5)), Result.records(List.of()));
        h.fail(h.invoke("c2", Invocation.readKey("s0", "k,1")), "NOT_LEADER");
        h.ok(h.invoke("c3", Invocation.deleteOffset("s0", 1)), Result.deleted(true));
        h.info(h.invoke("c3", Invocation.deleteKey("s0", "k,1")), "TIMEOUT");
        h.ok(h.invoke("c4", Invocation.commitOffset("g", "s0", 2)), Result.none());
        h.ok(h.invoke("c4", Invocation.readGroupOffset("g", "s0")), Result.groupOffset(OptionalLong.of(2)));
        h.ok(h.invoke("c4", Invocation.readGroupOffset("g", "s1")), Result.groupOffset(OptionalLong.empty()));
        h.nemesisStop("partition", "heal");
        h.sealPoints("s0", List.of(2L, 64L));
        h.invoke("c5", Invocation.write("s0", WrittenRecord.of("p4")));
        h.ok(h.invoke("final", Invocation.finalRead("s0", 0, 100)), Result.records(List.of(ReadRecord.of(2, "p3"))));
        return h;
    }

    @Test
    void aHistoryReadsBackFromJsonLinesAsItWasWritten(@TempDir Path dir) throws IOException {
        History h = everyKindOfEvent();
        Path file = dir.resolve("history.jsonl");
        h.write(file);
        History back = History.read(file);
        assertEquals(h.events(), back.events());
        assertEquals(h.ops(), back.ops());
        assertEquals(h.faults(), back.faults());
        assertEquals(Checker.check(h), Checker.check(back));
    }

    @Test
    void eachEventIsOneLineOfFlatJson() throws IOException {
        StringWriter out = new StringWriter();
        everyKindOfEvent().write(out);
        String[] lines = out.toString().split("\n");
        assertEquals(everyKindOfEvent().events().size(), lines.length);
        assertEquals("{\"event\":\"invoke\",\"id\":2,\"time\":21,\"process\":\"c1\",\"op\":\"BATCH_WRITE\",\"shard\":\"s0\","
                + "\"records\":[{\"payload\":\"p2\"},{\"payload\":\"p3\"}]}", lines[2]);
        assertEquals("{\"event\":\"ok\",\"id\":2,\"time\":28,\"offsets\":[1,2]}", lines[3]);
        assertEquals("{\"event\":\"nemesis\",\"time\":35,\"phase\":\"start\",\"kind\":\"partition\","
                + "\"description\":\"isolate n2 from n1, n3\"}", lines[4]);
    }

    @Test
    void aBadLineIsReportedWithItsNumber() {
        String text = "{\"event\":\"invoke\",\"id\":1,\"time\":1,\"process\":\"c\",\"op\":\"READ\",\"shard\":\"s\",\"from\":0,\"limit\":1}\n"
                + "{\"event\":\"ok\",\"id\":1,\"time\":2.5}\n";
        IOException e = assertThrows(IOException.class, () -> History.read(new StringReader(text)));
        assertTrue(e.getMessage().startsWith("line 2:"), e.getMessage());
    }

    @Test
    void anOperationCompletesExactlyOnce() {
        History h = new History();
        long id = h.invoke("c1", Invocation.read("s0", 0, 1));
        h.ok(id, Result.records(List.of()));
        assertThrows(IllegalStateException.class, () -> h.info(id, "TIMEOUT"));
        assertThrows(IllegalStateException.class, () -> h.fail(99, "NOT_LEADER"));
        long w = h.invoke("c1", Invocation.write("s0", WrittenRecord.of("p")));
        assertThrows(IllegalArgumentException.class, () -> h.ok(w, Result.offsets(1, 2)));
    }

    @Test
    void anOperationStillInFlightIsUnknown() {
        History h = everyKindOfEvent();
        Op pending = h.ops().stream().filter(op -> op.process().equals("c5")).findFirst().orElseThrow();
        assertEquals(Outcome.INFO, pending.outcome());
        assertEquals(Op.PENDING, pending.error());
        assertEquals(Op.NEVER, pending.completeNanos());
    }

    @Test
    void faultsPairEachStartWithTheNextStopOfItsKind() {
        AtomicLong clock = new AtomicLong();
        History h = new History(() -> clock.addAndGet(10));
        h.nemesisStart("kill", "n1");
        h.nemesisStart("partition", "halves");
        h.nemesisStart("kill", "n2");
        h.nemesisStop("kill", "");
        h.nemesisStop("partition", "healed");
        assertEquals(List.of(new Fault("kill", "n1", 10, 40), new Fault("partition", "halves; healed", 20, 50),
                new Fault("kill", "n2", 30, 50)), h.faults());
    }

    @Test
    void threadsRecordingAtOnceGetDistinctIdsAndOrderedTimes() throws InterruptedException {
        History h = new History();
        int threads = 4;
        int perThread = 2_000;
        CountDownLatch start = new CountDownLatch(1);
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            String process = "c" + t;
            long seed = t;
            workers.add(new Thread(() -> {
                Random random = new Random(seed);
                try {
                    start.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
                for (int i = 0; i < perThread; i++) {
                    long id = h.invoke(process, Invocation.read("s0", i, 1));
                    switch (random.nextInt(3)) {
                        case 0 -> h.ok(id, Result.records(List.of()));
                        case 1 -> h.fail(id, "NOT_LEADER");
                        default -> h.info(id, "TIMEOUT");
                    }
                }
            }));
        }
        workers.forEach(Thread::start);
        start.countDown();
        for (Thread w : workers) {
            w.join();
        }
        List<Event> events = h.events();
        assertEquals(2 * threads * perThread, events.size());
        Map<Long, Integer> completions = new HashMap<>();
        long previous = Long.MIN_VALUE;
        for (Event e : events) {
            assertTrue(e.nanos() >= previous, "events out of time order");
            previous = e.nanos();
            if (e instanceof Event.Complete c) {
                completions.merge(c.id(), 1, Integer::sum);
            }
        }
        assertEquals(threads * perThread, completions.size());
        assertTrue(completions.values().stream().allMatch(n -> n == 1));
        assertEquals(threads * perThread, h.ops().size());
    }
}
