// Platform threads, an executor, a parallel stream (the common ForkJoin pool), a child process:
// the JVM's own threads (GC, JIT) start before main; all must work under the seccomp profile.
import java.util.concurrent.*;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.LongStream;

public class Threads {
    public static void main(String[] args) throws Exception {
        AtomicLong total = new AtomicLong();
        Thread[] threads = new Thread[8];
        for (int i = 0; i < threads.length; i++) {
            final int n = i;
            threads[i] = new Thread(() -> total.addAndGet(n));
            threads[i].start();
        }
        for (Thread t : threads) t.join();
        ExecutorService pool = Executors.newFixedThreadPool(4);
        Future<Integer> f = pool.submit(() -> 6 * 7);
        int answer = f.get();
        pool.shutdown();
        long parallel = LongStream.rangeClosed(1, 1_000_000).parallel().sum();
        Process p = new ProcessBuilder("echo", "child").start();
        String child = new String(p.getInputStream().readAllBytes()).trim();
        p.waitFor();
        System.out.println("threads " + total.get() + " future " + answer + " parallel " + parallel + " " + child);
        System.out.println("ok java");
    }
}
