/*
 * Start-up and shutdown steps shared by the local node launchers of deploy/opensearch.sh and
 * deploy/elasticsearch.sh; each script compiles this file together with its LocalNode.java.
 * It uses no server class: a launcher builds its own node and passes in how to start and
 * close it.
 */
package imagedex.node;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.CountDownLatch;

public final class NodeMain {

    /** One step of the node's life that may throw: starting or closing it. */
    public interface Step {
        void run() throws Exception;
    }

    private NodeMain() {}

    /**
     * {home-dir, config-dir} of the command line "LocalNode <home-dir> <config-dir>"; exits
     * with status 2 on another command line or when the config dir lacks settingsFile.
     */
    public static Path[] dirs(String[] args, String settingsFile) {
        if (args.length != 2) {
            System.err.println("usage: LocalNode <home-dir> <config-dir>");
            System.exit(2);
        }
        Path home = Paths.get(args[0]).toAbsolutePath();
        Path config = Paths.get(args[1]).toAbsolutePath();
        if (!Files.isRegularFile(config.resolve(settingsFile))) {
            System.err.println("missing " + config.resolve(settingsFile));
            System.exit(2);
        }
        return new Path[] {home, config};
    }

    /**
     * Starts the node, prints startedMessage and blocks until SIGTERM/SIGINT, when a shutdown
     * hook runs close.
     */
    public static void serve(Step start, Step close, String startedMessage) throws InterruptedException {
        final CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                close.run();
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "imagedex-node-shutdown"));

        try {
            start.run();
        } catch (Throwable t) {
            System.err.println("node failed to start: " + t);
            t.printStackTrace();
            // halt: the shutdown hook could block on a half-started node
            Runtime.getRuntime().halt(1);
        }
        System.out.println(startedMessage);
        stopped.await();
    }
}
