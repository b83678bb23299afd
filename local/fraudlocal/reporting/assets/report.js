// Checks that every case graph was laid out by the browser: counts the vertices and edges
// that have a non-empty bounding box and writes the counts into the DOM
// (data-rendered-nodes / data-rendered-edges on each case section, and the totals on
// <body>), which the tests read back from a headless browser.
(function () {
  "use strict";
  var graphs = 0, nodes = 0, edges = 0;
  function drawn(element) {
    var box = element.getBBox();
    return box.width > 0 || box.height > 0;
  }
  document.querySelectorAll("section.case").forEach(function (section) {
    var svg = section.querySelector("svg.case-graph");
    if (!svg) { return; }
    var n = 0, e = 0;
    svg.querySelectorAll("g.node").forEach(function (g) { if (drawn(g)) { n += 1; } });
    svg.querySelectorAll("line.edge").forEach(function (line) { if (drawn(line)) { e += 1; } });
    section.setAttribute("data-rendered-nodes", String(n));
    section.setAttribute("data-rendered-edges", String(e));
    var note = section.querySelector("p.rendered");
    if (note) { note.textContent = n + " vertices, " + e + " edges drawn"; }
    graphs += 1; nodes += n; edges += e;
  });
  document.body.setAttribute("data-rendered-graphs", String(graphs));
  document.body.setAttribute("data-rendered-nodes", String(nodes));
  document.body.setAttribute("data-rendered-edges", String(edges));
})();
