package dev.segstore.it.raft;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;

/**
 * The cut meta <-> meta Raft links of this JVM (test only; issue 12): {@link FaultyRaftRpcFactory}, the jraft
 * transport of the test class path, fails every Raft request whose sender ({@code server_id}) and target
 * ({@code peer_id}) form a cut link, as a lost network would. A link is one direction, {@code from -> to}, both
 * jraft {@code ip:port} Raft addresses (a longer {@code PeerId} string, {@code ip:port:idx}, is cut to its
 * endpoint): cutting {@code A -> B} drops A's requests to B while B's to A and their answers pass (one way);
 * both directions partition the two.
 *
 * <p>In one JVM (the in-JVM clusters) the harness sets rules through the static methods; each rule belongs to an
 * owner (the fault that set it), so overlapping faults end independently. A meta-service <em>process</em> reads
 * its rules from a control file instead: when the system property {@value #FILE_PROPERTY} names one, the file is
 * polled every {@value #POLL_MS} ms and its links (one {@code FROM TO} pair a line, written atomically by
 * {@link #write}) replace the file's rules; a missing or empty file cuts nothing. With no rule every request
 * passes unchanged. Thread-safe.
 */
public final class RaftLinkFaults {
    /** The system property naming a meta process's control file (set by the process harness, ProcCluster). */
    public static final String FILE_PROPERTY = "segstore.testonly.raftLinks";
    /** The control file's name in a meta process's data directory. */
    public static final String CONTROL = "test-raft-links";
    public static final int POLL_MS = 20;

    /** One cut direction: {@code from}'s Raft requests to {@code to} are lost. */
    public record Link(String from, String to) {
        public Link {
            from = endpoint(from);
            to = endpoint(to);
        }

        @Override
        public String toString() {
            return from + " -> " + to;
        }
    }

    private static final Object FILE_OWNER = new Object();
    private static final AtomicBoolean WATCHING = new AtomicBoolean();
    private static final Map<Object, Set<Link>> RULES = new LinkedHashMap<>();
    /** The union of the rules, read without a lock on every Raft request. */
    private static volatile Set<Link> cut = Set.of();

    private RaftLinkFaults() {
    }

    /** {@code ip:port} of a jraft peer string ({@code ip:port}, {@code ip:port:idx}, {@code ip:port:idx:priority}). */
    static String endpoint(String peer) {
        String[] parts = peer.trim().split(":");
        if (parts.length < 2) {
            throw new IllegalArgumentException("not a Raft address (ip:port): '" + peer + "'");
        }
        return parts[0] + ":" + parts[1];
    }

    /** Cuts {@code from -> to} (its own rule, lifted by {@link #heal} or {@link #healAll}). */
    public static void cut(String from, String to) {
        Link link = new Link(from, to);
        cut(link, List.of(link));
    }

    /** Fault {@code owner} cuts {@code links} (added to what it cut before). */
    public static synchronized void cut(Object owner, Collection<Link> links) {
        RULES.computeIfAbsent(owner, o -> new HashSet<>()).addAll(links);
        publish();
    }

    /** The links of a partition of {@code node} from each of {@code others}, both ways. */
    public static List<Link> partition(String node, Collection<String> others) {
        List<Link> links = new ArrayList<>();
        for (String other : others) {
            links.add(new Link(node, other));
            links.add(new Link(other, node));
        }
        return links;
    }

    /** Lifts every link fault {@code owner} cut. */
    public static synchronized void lift(Object owner) {
        RULES.remove(owner);
        publish();
    }

    /** Heals {@code from -> to}, whoever cut it. */
    public static synchronized void heal(String from, String to) {
        Link link = new Link(from, to);
        RULES.values().forEach(links -> links.remove(link));
        publish();
    }

    /** Heals every link (the control file's too, until its next change). */
    public static synchronized void healAll() {
        RULES.clear();
        publish();
    }

    /** Every link cut now. */
    public static Set<Link> cutLinks() {
        return cut;
    }

    /** Whether {@code from}'s Raft requests to {@code to} are lost now. */
    public static boolean isCut(String from, String to) {
        Set<Link> now = cut;
        return !now.isEmpty() && now.contains(new Link(from, to));
    }

    private static void publish() {
        Set<Link> all = new HashSet<>();
        RULES.values().forEach(all::addAll);
        cut = Set.copyOf(all);
    }

    /** Replaces the control file {@code file} with {@code links} (atomically: a temporary file renamed over it). */
    public static void write(Path file, Collection<Link> links) throws IOException {
        Files.createDirectories(file.getParent());
        StringBuilder b = new StringBuilder();
        links.forEach(l -> b.append(l.from()).append(' ').append(l.to()).append('\n'));
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.writeString(tmp, b, StandardCharsets.UTF_8);
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** The links of control file {@code file}: none if it is missing. */
    static Set<Link> read(Path file) throws IOException {
        Set<Link> links = new HashSet<>();
        if (!Files.exists(file)) {
            return links;
        }
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            String[] words = line.trim().split("\\s+");
            if (words.length == 2) {
                links.add(new Link(words[0], words[1]));
            } else if (!line.isBlank()) {
                System.err.println("raft-link-control: line '" + line + "' of " + file + " is not 'FROM TO'; ignored");
            }
        }
        return links;
    }

    /** Reads {@code file} now and then every {@value #POLL_MS} ms on a daemon thread (once per JVM). */
    static void watch(Path file) {
        if (!WATCHING.compareAndSet(false, true)) {
            return;
        }
        poll(file); // rules set before the start apply to the first request
        Thread poller = new Thread(() -> {
            while (true) {
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(POLL_MS));
                poll(file);
            }
        }, "raft-link-control");
        poller.setDaemon(true);
        poller.start();
    }

    private static void poll(Path file) {
        Set<Link> links;
        try {
            links = read(file);
        } catch (IOException e) {
            return; // being replaced: the next poll reads it
        }
        synchronized (RaftLinkFaults.class) {
            Set<Link> before = RULES.getOrDefault(FILE_OWNER, Set.of());
            if (before.equals(links)) {
                return;
            }
            System.err.println("raft-link-control: cut Raft links " + (before.isEmpty() ? "none" : before) + " -> "
                    + (links.isEmpty() ? "none" : links));
            RULES.put(FILE_OWNER, links);
            publish();
        }
    }
}
