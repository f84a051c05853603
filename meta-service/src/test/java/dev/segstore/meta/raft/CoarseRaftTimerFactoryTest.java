package dev.segstore.meta.raft;

import com.alipay.sofa.jraft.JRaftUtils;
import com.alipay.sofa.jraft.util.timer.Timer;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CoarseRaftTimerFactoryTest {

    @Test
    void jraftUsesItsTimersAndTheyFire() throws Exception {
        assertInstanceOf(CoarseRaftTimerFactory.class, JRaftUtils.raftTimerFactory(), "found through META-INF/services");
        Timer timer = JRaftUtils.raftTimerFactory().getElectionTimer(false, "test-election");
        try {
            CountDownLatch fired = new CountDownLatch(1);
            timer.newTimeout(t -> fired.countDown(), 50, TimeUnit.MILLISECONDS);
            assertTrue(fired.await(10, TimeUnit.SECONDS));
        } finally {
            timer.stop();
        }
    }
}
