/*
 * The "imagedex-extras" module of the local Elasticsearch node (deploy/elasticsearch.sh).
 *
 * Maven Central has the Elasticsearch server jar and the transport-netty4 module, but not the
 * other modules a distribution ships in modules/ (analysis-common, rest-root, ...). This small
 * plugin provides the two pieces of them that imagedex and HTTP clients rely on:
 *
 *  - the "asciifolding" token filter (Lucene's ASCIIFoldingFilter; the server itself already
 *    has "lowercase"), usable in custom analyzers and in normalizers, by name or as
 *    {"type": "asciifolding", "preserve_original": true|false};
 *  - GET / and HEAD / (the cluster/version info document that clients use for a ping or
 *    a version check), in the same JSON shape as a distribution's root endpoint.
 *
 * It is written for this project against the public plugin API of the server jar. The REST
 * hook (getRestHandlers) changed its signature in 9.x, so each major has a small subclass that
 * returns rootHandlers(): Es8ExtrasPlugin, Es9ExtrasPlugin; the script compiles the one that
 * matches the server and names it in the module descriptor.
 */
package imagedex.elasticsearch.extras;

import java.util.Collection;
import java.util.List;
import java.util.Map;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.miscellaneous.ASCIIFoldingFilter;
import org.elasticsearch.Build;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.index.analysis.NormalizingTokenFilterFactory;
import org.elasticsearch.index.analysis.PreConfiguredTokenFilter;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.rest.BaseRestHandler;
import org.elasticsearch.rest.RestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.xcontent.XContentBuilder;

public abstract class ExtrasPlugin extends Plugin implements AnalysisPlugin, ActionPlugin {

    private volatile ClusterService clusterService;

    @Override
    public Collection<?> createComponents(PluginServices services) {
        clusterService = services.clusterService();
        return List.of();
    }

    // -- analysis -------------------------------------------------------------------------------

    /** {"type": "asciifolding", "preserve_original": bool}; normalizers never keep the original. */
    static final class AsciiFoldingFactory implements NormalizingTokenFilterFactory {
        private final String name;
        private final boolean preserveOriginal;

        // the interface rather than AbstractTokenFilterFactory, whose constructor differs in 8.x and 9.x
        AsciiFoldingFactory(String name, Settings settings) {
            this.name = name;
            this.preserveOriginal = settings.getAsBoolean("preserve_original", false);
        }

        @Override
        public String name() {
            return name;
        }

        @Override
        public TokenStream create(TokenStream in) {
            return new ASCIIFoldingFilter(in, preserveOriginal);
        }

        @Override
        public TokenStream normalize(TokenStream in) {
            return new ASCIIFoldingFilter(in, false);
        }
    }

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        return Map.of("asciifolding", (indexSettings, environment, name, settings) -> new AsciiFoldingFactory(name, settings));
    }

    @Override
    public List<PreConfiguredTokenFilter> getPreConfiguredTokenFilters() {
        // used when an analyzer or normalizer names "asciifolding" without defining it
        return List.of(PreConfiguredTokenFilter.singleton("asciifolding", true, in -> new ASCIIFoldingFilter(in)));
    }

    // -- GET / ----------------------------------------------------------------------------------

    final class RootHandler extends BaseRestHandler {
        @Override
        public String getName() {
            return "imagedex_root_action";
        }

        @Override
        public List<Route> routes() {
            return List.of(new Route(RestRequest.Method.GET, "/"), new Route(RestRequest.Method.HEAD, "/"));
        }

        @Override
        protected RestChannelConsumer prepareRequest(RestRequest request, org.elasticsearch.client.internal.node.NodeClient client) {
            final boolean head = request.method() == RestRequest.Method.HEAD;
            return channel -> {
                if (head) {
                    channel.sendResponse(new RestResponse(RestStatus.OK, RestResponse.TEXT_CONTENT_TYPE, org.elasticsearch.common.bytes.BytesArray.EMPTY));
                    return;
                }
                ClusterService cs = clusterService;
                Build build = Build.current();
                XContentBuilder b = channel.newBuilder();
                b.startObject();
                b.field("name", cs.getNodeName());
                b.field("cluster_name", cs.getClusterName().value());
                b.field("cluster_uuid", cs.state().metadata().clusterUUID());
                b.startObject("version");
                b.field("number", build.qualifiedVersion());
                b.field("build_flavor", build.flavor());
                b.field("build_type", build.type().displayName());
                b.field("build_hash", build.hash());
                b.field("build_date", build.date());
                b.field("build_snapshot", build.isSnapshot());
                b.field("lucene_version", org.apache.lucene.util.Version.LATEST.toString());
                b.field("minimum_wire_compatibility_version", build.minWireCompatVersion());
                b.field("minimum_index_compatibility_version", build.minIndexCompatVersion());
                b.endObject();
                b.field("tagline", "You Know, for Search");
                b.endObject();
                channel.sendResponse(new RestResponse(RestStatus.OK, b));
            };
        }
    }

    /** The handlers for GET / and HEAD /: the subclass for the major returns them from getRestHandlers. */
    protected final Collection<RestHandler> rootHandlers() {
        return List.of(new RootHandler());
    }
}
