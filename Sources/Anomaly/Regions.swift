/// A connected anomalous region of one frame.
public struct AnomalyRegion: Sendable, Equatable, Codable {
    /// Bounding box in output pixels: x, y, width, height.
    public var box: [Int]
    /// Area in output pixels.
    public var area: Int
    /// Mean grid score over the region's cells.
    public var score: Double
    /// The cluster most of its cells belong to.
    public var cluster: Int
    /// The region's cells as grid indices (for matching regions over time).
    public var cells: [Int]

    public init(box: [Int], area: Int, score: Double, cluster: Int, cells: [Int]) {
        self.box = box
        self.area = area
        self.score = score
        self.cluster = cluster
        self.cells = cells
    }
}

/// Connected components of the OoD mask.
public enum Regions {
    /// Regions of 4-connected flagged grid cells, scaled to an output of width x height, dropping those
    /// smaller than `minimumArea` output pixels, largest first.
    public static func find(_ analysis: GridAnalysis, width: Int, height: Int, minimumArea: Int = 0) -> [AnomalyRegion] {
        let gw = analysis.gridWidth, gh = analysis.gridHeight
        let mask = analysis.oodCells
        let labels = analysis.clusterings[0].kmeans.labels
        var regions: [AnomalyRegion] = []
        // Output pixel edges of grid column/row i: [i * width / gw, (i + 1) * width / gw).
        func xEdge(_ i: Int) -> Int { i * width / gw }
        func yEdge(_ i: Int) -> Int { i * height / gh }
        for cells in BinaryMask.components(mask, width: gw, height: gh) {
            let xs = cells.map { $0 % gw }, ys = cells.map { $0 / gw }
            let x0 = xEdge(xs.min()!), x1 = xEdge(xs.max()! + 1), y0 = yEdge(ys.min()!), y1 = yEdge(ys.max()! + 1)
            let area = cells.reduce(0) { $0 + (xEdge($1 % gw + 1) - xEdge($1 % gw)) * (yEdge($1 / gw + 1) - yEdge($1 / gw)) }
            guard area >= minimumArea else { continue }
            var votes: [Int32: Int] = [:]
            for c in cells { votes[labels[c], default: 0] += 1 }
            let cluster = Int(votes.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }!.key)
            let score = cells.reduce(0.0) { $0 + Double(analysis.gridScore[$1]) } / Double(cells.count)
            regions.append(AnomalyRegion(box: [x0, y0, x1 - x0, y1 - y0], area: area, score: score, cluster: cluster, cells: cells.sorted()))
        }
        return regions.sorted { $0.area > $1.area || ($0.area == $1.area && $0.cells[0] < $1.cells[0]) }
    }
}
