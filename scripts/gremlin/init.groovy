// Binds one traversal source per graph: `g` for graph, `g1`..`g7` for graph1..graph7.
// Parallel test workers each take their own source, so their data never meets.
// A Map returned by an init script becomes the server's global bindings.
def globals = [:]
globals << [g : traversal().withEmbedded(graph)]
globals << [g1 : traversal().withEmbedded(graph1)]
globals << [g2 : traversal().withEmbedded(graph2)]
globals << [g3 : traversal().withEmbedded(graph3)]
globals << [g4 : traversal().withEmbedded(graph4)]
globals << [g5 : traversal().withEmbedded(graph5)]
globals << [g6 : traversal().withEmbedded(graph6)]
globals << [g7 : traversal().withEmbedded(graph7)]
globals
