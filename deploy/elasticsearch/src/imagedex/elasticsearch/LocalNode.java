/*
 * Launcher for one local Elasticsearch node, used by deploy/elasticsearch.sh.
 *
 * A stock distribution starts org.elasticsearch.bootstrap.Elasticsearch through the
 * server-cli, which (besides reading the keystore, installing entitlements / the security
 * manager and running bootstrap checks) ends in creating and starting the public
 * org.elasticsearch.node.Node. This launcher does only that last part: it sets up logging,
 * builds the Environment from the generated config dir and starts the Node. Modules
 * (transport-netty4, the imagedex-extras plugin) are loaded by the server itself from
 * <home>/modules/NAME/, which the script lays out like a distribution.
 *
 * The server must run on the module path, as in a distribution: its plugin loader reads the
 * module descriptor of org.elasticsearch.server (on the class path it fails with a
 * NullPointerException in ModuleQualifiedExportsService).
 *
 * Usage: java --module-path <server jars> --add-modules ALL-MODULE-PATH -cp <classes> \
 *            imagedex.elasticsearch.LocalNode <home-dir> <config-dir>
 *
 *   <home-dir>/modules/NAME/        plugin-descriptor.properties + jars of each module
 *   <config-dir>/elasticsearch.yml  node settings (written by deploy/elasticsearch.sh)
 *   <config-dir>/log4j2.properties  logging (written by deploy/elasticsearch.sh)
 *
 * The node stops cleanly on SIGTERM/SIGINT: a shutdown hook closes it (NodeMain, in
 * deploy/lib/src, which the script compiles with this file).
 */
package imagedex.elasticsearch;

import java.nio.file.Path;
import java.util.Collections;
import java.util.concurrent.TimeUnit;

import imagedex.node.NodeMain;

import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;

public final class LocalNode {

    private LocalNode() {}

    public static void main(String[] args) throws Exception {
        Path[] dirs = NodeMain.dirs(args, "elasticsearch.yml"); // {home, config}

        // what the distribution's bootstrap does first: route the server's logging API to log4j
        LogConfigurator.configureESLogging();
        LogConfigurator.registerErrorListener();
        Settings input = Settings.builder().put("path.home", dirs[0].toString()).build();
        Environment env = InternalSettingsPreparer.prepareEnvironment(
            input, Collections.emptyMap(), dirs[1], () -> "node");
        LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(env.settings()));
        LogConfigurator.configure(env, true);

        final Node node;
        try {
            node = newNode(env);
        } catch (Throwable t) {
            if (t instanceof java.lang.reflect.InvocationTargetException && t.getCause() != null) {
                t = t.getCause();
            }
            System.err.println("node construction failed: " + t);
            t.printStackTrace();
            Runtime.getRuntime().halt(1);
            return;
        }
        NodeMain.serve(node::start, () -> {
            node.prepareForClose();
            node.close();
            node.awaitClose(20, TimeUnit.SECONDS);
        }, "imagedex: node started");
    }

    /**
     * The public Node constructor: `Node(Environment)` up to 8.17 (it scans the modules and
     * plugins dirs itself); from 8.18 on (9.x too) `Node(Environment, PluginsLoader)`, where the
     * distribution's bootstrap first loads the bundles of <home>/modules and <home>/plugins.
     * Reflection, so one source compiles against either.
     */
    private static Node newNode(Environment env) throws Exception {
        try {
            return Node.class.getConstructor(Environment.class).newInstance(env);
        } catch (NoSuchMethodException e) {
            // 8.18+
        }
        Class<?> loaderClass = Class.forName("org.elasticsearch.plugins.PluginsLoader");
        Path modules = (Path) dirOf(env, "modulesDir", "modulesFile");
        Path plugins = (Path) dirOf(env, "pluginsDir", "pluginsFile");
        Object moduleBundles = loadBundles(loaderClass, "loadModulesBundles", modules);
        Object pluginBundles = loadBundles(loaderClass, "loadPluginsBundles", plugins);
        // last argument: plugin name -> its modules that may use native access (none here)
        Object loader = loaderClass.getMethod("createPluginsLoader", java.util.Set.class, java.util.Set.class, java.util.Map.class)
            .invoke(null, moduleBundles, pluginBundles, Collections.emptyMap());
        return Node.class.getConstructor(Environment.class, loaderClass).newInstance(env, loader);
    }

    /**
     * PluginsLoader.loadModulesBundles / loadPluginsBundles: (Path) up to 9.2 or so; later ones
     * add a boolean that selects serverless-only bundles (false: a stateful node, as here).
     */
    private static Object loadBundles(Class<?> loaderClass, String method, Path dir) throws Exception {
        try {
            return loaderClass.getMethod(method, Path.class).invoke(null, dir);
        } catch (NoSuchMethodException e) {
            return loaderClass.getMethod(method, Path.class, boolean.class).invoke(null, dir, false);
        }
    }

    private static Object dirOf(Environment env, String... methods) throws Exception {
        for (String m : methods) {
            try {
                return Environment.class.getMethod(m).invoke(env);
            } catch (NoSuchMethodException e) {
                // older/newer name
            }
        }
        throw new NoSuchMethodException("Environment." + String.join("/", methods));
    }
}
