"use strict";
// loopwarden report: the detail panel behind the map, sorting and filtering of the findings.
// It only moves and copies the page's own nodes (cloneNode, textContent): no markup is ever
// built from text. Without it the page still shows everything.
(function () {
  function rows(section, test) {
    return Array.prototype.filter.call(section.querySelectorAll("table.findings tbody tr"), test);
  }

  // Whether the space-separated list in attribute `name` of `row` holds `value`.
  function lists(row, name, value) {
    return (row.getAttribute(name) || "").split(" ").indexOf(value) >= 0;
  }

  function show(section, heading, extra, found) {
    var panel = section.querySelector("aside.detail");
    var map = section.querySelector("svg.map");
    while (panel.firstChild) panel.removeChild(panel.firstChild);
    var close = document.createElement("button");
    close.type = "button";
    close.className = "close";
    close.textContent = "close";
    close.addEventListener("click", function () { clear(section); });
    panel.appendChild(close);
    var h = document.createElement("h4");
    h.textContent = heading;
    panel.appendChild(h);
    if (extra) panel.appendChild(extra);
    var table = document.createElement("table");
    table.className = "detail-findings";
    table.appendChild(section.querySelector("table.findings thead").cloneNode(true));
    var body = document.createElement("tbody");
    found.forEach(function (row) {
      var copy = row.cloneNode(true);
      copy.removeAttribute("id");
      copy.hidden = false;
      body.appendChild(copy);
    });
    table.appendChild(body);
    panel.appendChild(table);
    panel.hidden = false;
    if (map) map.classList.add("focused");
  }

  function clear(section) {
    var panel = section.querySelector("aside.detail");
    panel.hidden = true;
    while (panel.firstChild) panel.removeChild(panel.firstChild);
    var map = section.querySelector("svg.map");
    if (map) map.classList.remove("focused");
    section.querySelectorAll("svg.map .selected").forEach(function (g) { g.classList.remove("selected"); });
  }

  function titleOf(g) {
    var t = g.querySelector("title");
    return t ? t.textContent : "";
  }

  function select(section, g) {
    clear(section);
    g.classList.add("selected");
    if (g.classList.contains("service")) {
      var n = g.getAttribute("data-node");
      section.querySelectorAll('svg.map .edge[data-node="' + n + '"]').forEach(function (e) { e.classList.add("selected"); });
      var serviceRow = section.querySelector('table.services tr[data-node="' + n + '"]');
      var extra = null;
      if (serviceRow) {
        extra = document.createElement("table");
        extra.className = "services";
        extra.appendChild(section.querySelector("table.services thead").cloneNode(true));
        var b = document.createElement("tbody");
        var copy = serviceRow.cloneNode(true);
        copy.removeAttribute("id");
        b.appendChild(copy);
        extra.appendChild(b);
      }
      show(section, titleOf(g), extra, rows(section, function (r) { return lists(r, "data-nodes", n); }));
    } else if (g.classList.contains("edge")) {
      var e = g.getAttribute("data-edge");
      section.querySelectorAll('svg.map .service[data-node="' + g.getAttribute("data-node") + '"]').forEach(function (s) { s.classList.add("selected"); });
      show(section, titleOf(g), null, rows(section, function (r) { return lists(r, "data-edges", e); }));
    } else if (g.classList.contains("attacker")) {
      var a = g.getAttribute("data-attacker");
      section.querySelectorAll('svg.map .edge[data-attacker="' + a + '"]').forEach(function (x) { x.classList.add("selected"); });
      show(section, titleOf(g), null, rows(section, function (r) { return r.getAttribute("data-attacker") === a; }));
    }
  }

  function wireMap(section) {
    var map = section.querySelector("svg.map");
    if (!map) return;
    map.querySelectorAll("g.service, g.edge, g.attacker").forEach(function (g) {
      function pick(ev) {
        ev.preventDefault();
        ev.stopPropagation();
        select(section, g);
        if (history.replaceState) history.replaceState(null, "", "#" + g.id);
      }
      g.addEventListener("click", pick);
      g.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") pick(ev); });
    });
    // The links are for pages without script: with it, a click selects instead of jumping.
    map.querySelectorAll("a").forEach(function (a) {
      a.addEventListener("click", function (ev) { ev.preventDefault(); });
    });
  }

  function wireSort(section) {
    var table = section.querySelector("table.findings");
    if (!table) return;
    var numeric = { severity: "data-severity", status: "data-status-rank", confidence: "data-confidence" };
    // The sortable headings become buttons: without the script they are plain headings.
    table.querySelectorAll("th[data-sort]").forEach(function (th) {
      var button = document.createElement("button");
      button.type = "button";
      button.setAttribute("data-sort", th.getAttribute("data-sort"));
      button.textContent = th.textContent;
      th.textContent = "";
      th.appendChild(button);
    });
    table.querySelectorAll("th button[data-sort]").forEach(function (button) {
      button.addEventListener("click", function () {
        var key = button.getAttribute("data-sort");
        var descending = button.getAttribute("aria-sort") !== "descending";
        table.querySelectorAll("th button").forEach(function (b) { b.removeAttribute("aria-sort"); });
        button.setAttribute("aria-sort", descending ? "descending" : "ascending");
        var body = table.tBodies[0];
        var list = Array.prototype.slice.call(body.rows);
        list.sort(function (x, y) {
          var c;
          if (numeric[key]) {
            c = Number(x.getAttribute(numeric[key])) - Number(y.getAttribute(numeric[key]));
          } else {
            c = (x.getAttribute("data-" + key) || "").localeCompare(y.getAttribute("data-" + key) || "");
          }
          return descending ? -c : c;
        });
        list.forEach(function (r) { body.appendChild(r); });
      });
    });
  }

  function wireFilters(section) {
    var box = section.querySelector(".filters");
    if (!box) return;
    box.hidden = false;
    var out = box.querySelector("output");
    function apply() {
      var min = Number(box.querySelector('[data-filter="severity"]').value);
      var attacker = box.querySelector('[data-filter="attacker"]').value;
      var status = box.querySelector('[data-filter="status"]').value;
      var all = rows(section, function () { return true; });
      var shown = 0;
      all.forEach(function (r) {
        var keep = Number(r.getAttribute("data-severity")) >= min &&
          (!attacker || r.getAttribute("data-attacker") === attacker) &&
          (!status || r.getAttribute("data-status") === status);
        r.hidden = !keep;
        if (keep) shown += 1;
      });
      out.textContent = shown + " of " + all.length + " findings shown";
    }
    box.querySelectorAll("select").forEach(function (s) { s.addEventListener("change", apply); });
    apply();
  }

  document.querySelectorAll("section.report").forEach(function (section) {
    wireMap(section);
    wireSort(section);
    wireFilters(section);
  });

  function fromHash() {
    var id = decodeURIComponent(location.hash.slice(1));
    var g = id && document.getElementById(id);
    if (g && g.closest && g.closest("svg.map")) select(g.closest("section.report"), g);
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
  document.documentElement.setAttribute("data-script", "ready");
})();
