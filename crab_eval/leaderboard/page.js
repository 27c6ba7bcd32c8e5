// Column sorting and row filters for the static leaderboard page; no network, no dependencies.
(function () {
  "use strict";

  function sortKey(cell) {
    var raw = cell ? cell.getAttribute("data-sort") : null;
    if (raw === null || raw === "") { return null; }
    var num = Number(raw);
    return isNaN(num) ? raw.toLowerCase() : num;
  }

  function sortBy(table, index, header) {
    var numeric = header.getAttribute("data-type") === "number";
    var current = header.getAttribute("aria-sort");
    // Numbers sort best first (descending) on the first click, text A-Z.
    var direction = current ? (current === "ascending" ? "descending" : "ascending")
                            : (numeric ? "descending" : "ascending");
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", direction);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = sortKey(a.cells[index]), y = sortKey(b.cells[index]);
      if (x === null || y === null) { return (x === null) - (y === null); }  // missing values always last
      var order = x < y ? -1 : (x > y ? 1 : 0);
      return direction === "ascending" ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  function applyFilters() {
    var allowed = {};
    document.querySelectorAll("input[data-filter]").forEach(function (box) {
      var key = box.getAttribute("data-filter");
      allowed[key] = allowed[key] || {};
      allowed[key][box.value] = box.checked;
    });
    var shown = 0, total = 0;
    document.querySelectorAll("tr[data-row]").forEach(function (row) {
      var visible = allowed.variant[row.getAttribute("data-variant")] !== false &&
                    allowed.source[row.getAttribute("data-source")] !== false;
      row.hidden = !visible;
      if (row.closest("table").id === "table-summary") { total += 1; shown += visible ? 1 : 0; }
    });
    var counter = document.getElementById("shown-count");
    if (counter) { counter.textContent = shown + " of " + total + " rows shown"; }
  }

  document.querySelectorAll("table.board").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      var button = th.querySelector("button");
      if (button) { button.addEventListener("click", function () { sortBy(table, index, th); }); }
    });
  });
  document.querySelectorAll("input[data-filter]").forEach(function (box) {
    box.addEventListener("change", applyFilters);
  });
  applyFilters();
})();
