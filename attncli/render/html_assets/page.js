// attncli's HTML page: a cell's value on hover or focus, its arithmetic on a click or Enter,
// the arrow keys between the cells of a grid, Escape to close. Nothing is fetched.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent || "{}");
  var tip = document.getElementById("tooltip");
  var panel = document.getElementById("arithmetic");
  var chosen = null;

  function figureOf(cell) { return cell.closest("figure.heatmap"); }
  function shown(value) {
    if (value === "-inf") return "\u2212\u221e";
    var v = Number(value);
    var text = v.toFixed(4);
    return text === "-0.0000" ? "0.0000" : text;
  }
  function describe(cell) {
    var figure = figureOf(cell);
    var i = Number(cell.dataset.i), j = Number(cell.dataset.j);
    var q = (data.queries || [])[i], k = (data.keys || [])[j];
    var text = figure.dataset.step + "[" + (q === undefined ? i : q) + ", " +
      (k === undefined ? j : k) + "] = " + shown(cell.dataset.value);
    if (figure.dataset.head !== undefined) text += ", head " + figure.dataset.head;
    if (figure.dataset.batch !== undefined) text += ", batch " + figure.dataset.batch;
    return text;
  }
  function showTip(cell) {  // not while the panel is open: its heading says the same
    tip.textContent = panel.hidden ? describe(cell) : "";
  }
  function hide() {
    panel.hidden = true;
    document.body.classList.remove("with-panel");
    tip.textContent = "";
    if (chosen) chosen.classList.remove("chosen");
    chosen = null;
  }
  function add(parent, tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    node.textContent = text;
    parent.appendChild(node);
    return node;
  }
  function showArithmetic(cell) {
    var figure = figureOf(cell);
    var head = figure.dataset.head === undefined ? "0" : figure.dataset.head;
    var i = cell.dataset.i, j = cell.dataset.j;
    panel.textContent = "";
    var close = add(panel, "button", "close", "close (Esc)");
    close.type = "button";
    close.addEventListener("click", function () { hide(); cell.focus(); });
    add(panel, "h2", "", describe(cell));
    panel.dataset.step = figure.dataset.step;
    panel.dataset.head = head;
    panel.dataset.i = i;
    panel.dataset.j = j;
    var arithmetic = data.arithmetic || {};
    var cells = (arithmetic.cells || {})[i + "," + j];
    var sections = cells && cells[head] ? cells[head].map(function (k) {
      return arithmetic.sections[k];
    }) : null;
    if (!sections) {
      add(panel, "p", "note", "The page carries no arithmetic for this cell: " +
        (data.explain || "attncli explain --query Q --key K writes it out"));
    } else {
      sections.forEach(function (section) {
        add(panel, "h3", "", section.title);
        section.lines.forEach(function (line) { add(panel, "div", "equation", line); });
      });
    }
    if (chosen) chosen.classList.remove("chosen");
    chosen = cell;
    cell.classList.add("chosen");
    var grid = cell.closest("table");  // the roving tab stop follows the chosen cell
    Array.prototype.forEach.call(grid.querySelectorAll("td.cell"), function (other) {
      other.tabIndex = other === cell ? 0 : -1;
    });
    panel.hidden = false;
    tip.textContent = "";
    document.body.classList.add("with-panel");  // the page makes room: the cell stays seen
    cell.scrollIntoView({block: "center", inline: "nearest"});
  }
  function move(cell, dr, dc) {  // the arrow keys: the next cell of the grid
    var row = cell.parentElement, table = cell.closest("table");
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var r = rows.indexOf(row) + dr, c = cell.cellIndex + dc;
    if (r < 0 || r >= rows.length || c < 1 || c >= rows[r].cells.length) return;
    var next = rows[r].cells[c];
    cell.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  }
  // a link to a cell, #cell-STEP-HEAD-I-J (HEAD 0 with one head), opens its arithmetic
  function fromHash() {
    var found = /^#cell-([a-z_]+)-(\d+)-(\d+)-(\d+)$/.exec(window.location.hash);
    if (!found) return;
    var figures = document.querySelectorAll('figure.heatmap[data-step="' + found[1] + '"]');
    Array.prototype.forEach.call(figures, function (figure) {
      var head = figure.dataset.head === undefined ? "0" : figure.dataset.head;
      if (head !== found[2]) return;
      var cell = figure.querySelector('td.cell[data-i="' + found[3] + '"][data-j="' +
        found[4] + '"]');
      if (cell) { showArithmetic(cell); showTip(cell); cell.scrollIntoView({block: "center"}); }
    });
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
  document.addEventListener("mouseover", function (event) {
    var cell = event.target.closest && event.target.closest("td.cell");
    if (cell) showTip(cell);
  });
  document.addEventListener("focusin", function (event) {
    var cell = event.target.closest && event.target.closest("td.cell");
    if (cell) showTip(cell);
  });
  document.addEventListener("click", function (event) {
    var cell = event.target.closest && event.target.closest("td.cell");
    if (cell) showArithmetic(cell);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { hide(); return; }
    var cell = event.target.closest && event.target.closest("td.cell");
    if (!cell) return;
    var moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (moves[event.key]) {
      event.preventDefault();
      move(cell, moves[event.key][0], moves[event.key][1]);
    } else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      showArithmetic(cell);
    }
  });
})();
