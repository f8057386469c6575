/* Sortable tables, no dependencies.
 *
 * Every <table class="sortable"> gets a button in each header cell of its <thead>
 * (except cells with data-nosort); clicking it sorts the rows of every <tbody> by that
 * column, ascending first, then descending, and sets aria-sort on the header cell.
 *
 * A cell sorts by its data-sort-value attribute when present, else by its text. When
 * every non-empty value of the column reads as a number ("1,234.50", "12 %", "$ -3",
 * "(4.00)" for a negative), the column sorts numerically; otherwise as text, with digit
 * runs compared as numbers ("track 2" before "track 10"). Empty cells sort last. The sort
 * is stable, so sorting by one column and then another keeps ties in the earlier order.
 */
(function () {
  "use strict";

  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) return "";
    var raw = cell.getAttribute("data-sort-value");
    return (raw !== null ? raw : cell.textContent).trim();
  }

  function parseNumber(text) {
    if (text === "") return null;
    var negative = /^\(.*\)$/.test(text);
    var cleaned = text.replace(/[()\s\u00a0,%$€£¥]|[A-Z]{3}/g, "").replace(/[\u2212\u2013]/g, "-");
    if (!/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(cleaned)) return null;
    var value = parseFloat(cleaned);
    return negative ? -value : value;
  }

  function columnIsNumeric(rows, index) {
    var seen = false;
    for (var i = 0; i < rows.length; i++) {
      var text = cellValue(rows[i], index);
      if (text === "") continue;
      if (parseNumber(text) === null) return false;
      seen = true;
    }
    return seen;
  }

  function sortTable(table, th, index) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var bodies = table.tBodies;
    for (var b = 0; b < bodies.length; b++) {
      var body = bodies[b];
      var rows = Array.prototype.slice.call(body.rows);
      var numeric = columnIsNumeric(rows, index);
      var keyed = rows.map(function (row, position) {
        var text = cellValue(row, index);
        return { row: row, position: position, text: text, number: numeric ? parseNumber(text) : null };
      });
      keyed.sort(function (a, b) {
        var emptyA = a.text === "", emptyB = b.text === "";
        if (emptyA !== emptyB) return emptyA ? 1 : -1; // empty cells last, either direction
        var order = 0;
        if (!emptyA) {
          order = numeric ? a.number - b.number : collator.compare(a.text, b.text);
          if (!ascending) order = -order;
        }
        return order || a.position - b.position;
      });
      var fragment = document.createDocumentFragment();
      keyed.forEach(function (item) { fragment.appendChild(item.row); });
      body.appendChild(fragment);
    }
    var headers = th.parentNode.cells;
    for (var h = 0; h < headers.length; h++) {
      if (headers[h] !== th) headers[h].removeAttribute("aria-sort");
    }
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  function enhance(table) {
    if (!table.tHead || table.getAttribute("data-sortable-ready")) return;
    table.setAttribute("data-sortable-ready", "1");
    var headRow = table.tHead.rows[table.tHead.rows.length - 1];
    Array.prototype.forEach.call(headRow.cells, function (th, index) {
      if (th.hasAttribute("data-nosort") || th.colSpan > 1) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      button.addEventListener("click", function () { sortTable(table, th, index); });
    });
  }

  function enhanceAll(root) {
    var tables = (root || document).querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, enhance);
  }

  window.sortableTables = { enhanceAll: enhanceAll, sort: sortTable };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { enhanceAll(document); });
  } else {
    enhanceAll(document);
  }
})();
