package dev.segstore.meta.raft;

import com.alipay.sofa.jraft.util.NamedThreadFactory;
import com.alipay.sofa.jraft.util.SPI;
import com.alipay.sofa.jraft.util.timer.DefaultRaftTimerFactory;
import com.alipay.sofa.jraft.util.timer.HashedWheelTimer;
import com.alipay.sofa.jraft.util.timer.Timer;

import java.util.concurrent.TimeUnit;

/**
 * jraft's timers with a 10 ms tick instead of its 1 ms. Each of a node's timers (election, vote, step-down,
 * snapshot, the read-index scanner) is a timer wheel whose thread wakes at every tick, busy or not: at 1 ms
 * they kept an idle meta node at 6-13 % of a core (measured with {@code top}). Raft's timeouts here are
 * hundreds of milliseconds, so 10 ms of slack changes nothing that matters. jraft finds this factory through
 * {@code META-INF/services}; it wins over jraft's own by its higher {@link SPI} priority.
 */
@SPI(priority = 100)
public final class CoarseRaftTimerFactory extends DefaultRaftTimerFactory {
    static final long TICK_MS = 10;
    private static final int TICKS_PER_WHEEL = 512;

    @Override
    public Timer createTimer(String name) {
        return new HashedWheelTimer(new NamedThreadFactory(name, true), TICK_MS, TimeUnit.MILLISECONDS, TICKS_PER_WHEEL);
    }
}
