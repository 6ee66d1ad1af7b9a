/*
 * The imagedex-extras module class for Elasticsearch 9.x: ExtrasPlugin plus the 9.x signature
 * of the REST hook, which takes its services as one record (deploy/elasticsearch.sh compiles it
 * only for a 9.x server).
 */
package imagedex.elasticsearch.extras;

import java.util.Collection;
import java.util.function.Predicate;
import java.util.function.Supplier;

import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.features.NodeFeature;
import org.elasticsearch.rest.RestHandler;

public final class Es9ExtrasPlugin extends ExtrasPlugin {
    @Override
    public Collection<RestHandler> getRestHandlers(
        RestHandlersServices services,
        Supplier<DiscoveryNodes> nodesInCluster,
        Predicate<NodeFeature> clusterSupportsFeature
    ) {
        return rootHandlers();
    }
}
