/*
 * Launcher for one local OpenSearch node, used by deploy/opensearch.sh.
 *
 * A stock OpenSearch distribution starts org.opensearch.bootstrap.OpenSearch, which
 * loads the bundled modules/ and plugins/ folders from disk. The Maven Central
 * artifacts have no such folders, so this launcher builds the node directly and
 * hands it the module plugin classes that are on the JVM classpath.
 *
 * Usage: java -cp <classes>:<maven classpath> imagedex.opensearch.LocalNode <home-dir> <config-dir>
 *
 *   <home-dir>/plugins/             plugins loaded from disk as in a distribution (k-NN)
 *   <config-dir>/opensearch.yml     node settings (written by deploy/opensearch.sh)
 *   <config-dir>/log4j2.properties  logging (written by deploy/opensearch.sh)
 *   system property imagedex.opensearch.plugins: comma-separated entries "name=class.Name"
 *   (module name as in a distribution, then the plugin class; "A|B" lists alternative class
 *   names, e.g. 3.x renamed Netty4Plugin to Netty4ModulePlugin); a module none of whose
 *   classes is on the classpath is skipped with a warning.
 *
 * OpenSearch 2.x takes classpath plugins as a Collection<Class<? extends Plugin>>, 3.x as a
 * Collection<PluginInfo> (which carries the module name); both erase to the same constructor,
 * so the launcher looks at the generic type at run time and builds the matching collection.
 *
 * The node stops cleanly on SIGTERM/SIGINT: a shutdown hook closes it (NodeMain, in
 * deploy/lib/src, which the script compiles with this file).
 */
package imagedex.opensearch;

import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;

import imagedex.node.NodeMain;

import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.Version;
import org.opensearch.plugins.Plugin;
import org.opensearch.plugins.PluginInfo;

public final class LocalNode {

    /** Node with an explicit list of classpath plugins (the public constructor only loads plugins from disk). */
    static final class PluginNode extends Node {
        @SuppressWarnings({"rawtypes", "unchecked"})
        PluginNode(Environment environment, Collection plugins) {
            super(environment, plugins, true);
        }
    }

    /** True when this server version wants PluginInfo objects (3.x) rather than classes (2.x). */
    private static boolean nodeTakesPluginInfo() throws NoSuchMethodException {
        Type t = Node.class.getDeclaredConstructor(Environment.class, Collection.class, boolean.class)
            .getGenericParameterTypes()[1];
        if (t instanceof ParameterizedType) {
            Type arg = ((ParameterizedType) t).getActualTypeArguments()[0];
            return arg == PluginInfo.class;
        }
        return false;
    }

    private LocalNode() {}

    public static void main(String[] args) throws Exception {
        Path[] dirs = NodeMain.dirs(args, "opensearch.yml"); // {home, config}

        LogConfigurator.registerErrorListener();
        Settings input = Settings.builder().put("path.home", dirs[0].toString()).build();
        Environment env = InternalSettingsPreparer.prepareEnvironment(
            input, Collections.emptyMap(), dirs[1], () -> "node");
        LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(env.settings()));
        LogConfigurator.configure(env);

        List<String[]> plugins = loadPlugins(System.getProperty("imagedex.opensearch.plugins", ""));
        List<Object> arg = new ArrayList<>();
        boolean infos = nodeTakesPluginInfo();
        for (String[] p : plugins) {
            if (infos) {
                arg.add(new PluginInfo(p[0], "module " + p[0] + " (classpath)", Version.CURRENT.toString(),
                    Version.CURRENT, System.getProperty("java.specification.version"), p[1], null,
                    Collections.emptyList(), false));
            } else {
                arg.add(Class.forName(p[1]));
            }
        }

        final Node node = new PluginNode(env, arg);
        NodeMain.serve(node::start, () -> {
            node.close();
            node.awaitClose(20, TimeUnit.SECONDS);
        }, "imagedex: node started, plugins=" + plugins.size());
    }

    /** Entries {name, class name} whose class is on the classpath and is a Plugin. */
    private static List<String[]> loadPlugins(String spec) {
        List<String[]> out = new ArrayList<>();
        for (String raw : spec.split(",")) {
            String entry = raw.trim();
            if (entry.isEmpty()) {
                continue;
            }
            int eq = entry.indexOf('=');
            String module = eq < 0 ? entry : entry.substring(0, eq).trim();
            String found = null;
            for (String candidate : (eq < 0 ? entry : entry.substring(eq + 1)).split("\\|")) {
                String name = candidate.trim();
                try {
                    Class<?> c = Class.forName(name, false, LocalNode.class.getClassLoader());
                    if (Plugin.class.isAssignableFrom(c)) {
                        found = name;
                        break;
                    }
                    System.err.println("imagedex: not a plugin class: " + name);
                } catch (ClassNotFoundException e) {
                    // try the next alternative
                }
            }
            if (found == null) {
                System.err.println("imagedex: no plugin class of module " + module + " on the classpath, skipped");
            } else {
                out.add(new String[] {module, found});
            }
        }
        return out;
    }
}
