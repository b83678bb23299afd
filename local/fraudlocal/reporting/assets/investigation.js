// Draws the investigation's ring graph from the JSON embedded in the page (positions are
// computed in Python), then writes how many nodes and edges it drew into the DOM
// (data-rendered-nodes / data-rendered-edges on <body>), which tests read back.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("investigation-data").textContent);
  var svg = document.getElementById("ring-graph");
  svg.setAttribute("viewBox", "0 0 " + data.width + " " + data.height);
  var byId = {};
  data.nodes.forEach(function (n) { byId[n.id] = n; });

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    parent.appendChild(node);
    return node;
  }

  var edgeLayer = el("g", { "class": "edges" }, svg);
  var nodeLayer = el("g", { "class": "nodes" }, svg);
  var edges = 0;
  data.edges.forEach(function (e) {
    var a = byId[e.source], b = byId[e.target];
    if (!a || !b) { return; }
    el("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, "class": "edge edge-" + e.type,
                 "data-source": e.source, "data-target": e.target }, edgeLayer);
    edges += 1;
  });

  var drawn = 0;
  data.nodes.forEach(function (n) {
    var g = el("g", { "class": "node node-" + n.kind + (n.flagged ? " flagged" : "") +
                      (n.propagated ? " propagated" : "") + (n.start ? " start" : ""),
                      "data-id": n.id, transform: "translate(" + n.x + "," + n.y + ")" }, nodeLayer);
    if (n.kind === "account") {
      el("circle", { r: n.start ? 13 : 10 }, g);
    } else {
      el("rect", { x: -8, y: -8, width: 16, height: 16, transform: "rotate(45)" }, g);
    }
    var title = el("title", {}, g);
    title.textContent = n.tooltip;
    var text = el("text", { x: 0, y: n.kind === "account" ? 26 : 22, "text-anchor": "middle" }, g);
    text.textContent = n.label;
    g.addEventListener("mouseenter", function () { highlight(n.id, true); });
    g.addEventListener("mouseleave", function () { highlight(n.id, false); });
    drawn += 1;
  });

  function highlight(id, on) {
    svg.querySelectorAll("line.edge").forEach(function (line) {
      var touches = line.getAttribute("data-source") === id || line.getAttribute("data-target") === id;
      line.classList.toggle("lit", on && touches);
    });
  }

  document.body.setAttribute("data-rendered-nodes", String(drawn));
  document.body.setAttribute("data-rendered-edges", String(edges));
  var count = document.getElementById("graph-count");
  if (count) { count.textContent = drawn + " vertices, " + edges + " edges drawn"; }
})();
