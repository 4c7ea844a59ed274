/* Opens the rolled-up rows of By Day and By Model & Day: their days, and each day's members,
   built on demand from the data embedded in the page (reporter/render/screen_data.py). */
(function () {
  "use strict";
  var source = document.getElementById("report-data");
  if (!source) { return; }
  var data = JSON.parse(source.textContent);
  var ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";
  var DIGIT = {};
  for (var k = 0; k < ALPHABET.length; k++) { DIGIT[ALPHABET.charAt(k)] = k; }
  var SAFE = 9007199254740991;
  var months = {};

  function decode(text) {
    var pos = 0;
    function num() {
      var value = 0, big = null, digit;
      do {
        digit = DIGIT[text.charAt(pos++)];
        if (big === null && value > 0x3ffffffffffff) { big = BigInt(value); }
        if (big === null) { value = value * 32 + (digit & 31); }
        else { big = big * BigInt(32) + BigInt(digit & 31); }
      } while (digit < 32);
      return big === null ? value : big;
    }
    function row(indexed) {
      var r = { index: indexed ? num() : -1, cost: num(), requests: num(), input: num(),
                output: num(), members: [] };
      for (var n = num(); n > 0; n--) {
        r.members.push({ index: num(), cost: num(), requests: num(), input: num(),
                         output: num() });
      }
      return r;
    }
    return { more: function () { return pos < text.length; }, num: num, row: row };
  }

  function month(key) {
    if (!months[key]) {
      var reader = decode(data.months[key] || ""), days = [];
      while (reader.more()) {
        var dom = reader.num(), day = reader.row(false);
        day.date = key + "-" + (dom < 10 ? "0" : "") + dom;
        day.models = {};
        for (var n = reader.num(); n > 0; n--) {
          var model = reader.row(true);
          day.models[data.models[model.index]] = model;
        }
        days.push(day);
      }
      months[key] = days;
    }
    return months[key];
  }

  function daysBetween(first, last) {
    var out = [];
    Object.keys(data.months).sort().forEach(function (key) {
      if (key < first.slice(0, 7) || key > last.slice(0, 7)) { return; }
      month(key).forEach(function (day) {
        if (day.date >= first && day.date <= last) { out.push(day); }
      });
    });
    return out;
  }

  function grouped(text) { return text.replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  function count(value) { return grouped(String(value)); }
  // rounded half up to the report's places, as the page's other amounts are
  function usd(nanos) {
    var unit = BigInt(Math.pow(10, 9 - data.places));
    var text = ((BigInt(nanos) + unit / BigInt(2)) / unit).toString();
    while (text.length <= data.places) { text = "0" + text; }
    if (!data.places) { return "$" + grouped(text); }
    return "$" + grouped(text.slice(0, -data.places)) + "." + text.slice(-data.places);
  }
  function sum(a, b) {
    if (typeof a === "number" && typeof b === "number" && a + b <= SAFE) { return a + b; }
    return BigInt(a) + BigInt(b);
  }

  function cell(tag, text, className, label) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (label) { node.setAttribute("data-label", label); }
    node.textContent = text;
    return node;
  }
  function toggle(label) {
    var details = document.createElement("details");
    details.appendChild(cell("summary", label));
    return details;
  }
  function figures(tr, r, users) {
    tr.appendChild(cell("td", usd(r.cost), "num", "Cost"));
    tr.appendChild(cell("td", count(r.requests), "num", "Requests"));
    var tokens = cell("td", count(sum(r.input, r.output)), "num", "Tokens");
    tokens.title = "Input " + count(r.input) + " · Output " + count(r.output);
    tr.appendChild(tokens);
    if (!data.personal) {
      tr.appendChild(users === null ? cell("td", "") : cell("td", count(users), "num", "Users"));
    }
  }
  function memberRows(r, withModel, deep) {
    return r.members.map(function (m) {
      var tr = document.createElement("tr"), who = data.members[m.index];
      tr.className = "member" + (deep ? " deep" : "");
      var th = cell("th", "", "person");
      th.scope = "row";
      if (withModel) { th.colSpan = 2; }
      if (who[1]) { th.appendChild(cell("span", who[1], "who")); th.appendChild(document.createTextNode(" ")); }
      th.appendChild(cell("span", who[0], "email"));
      tr.appendChild(th);
      figures(tr, m, null);
      return tr;
    });
  }
  function dayRow(day, r, model) {
    var tr = document.createElement("tr"), th = document.createElement("th");
    tr.className = "day";
    th.className = "date";
    th.scope = "row";
    if (data.personal) { th.textContent = day.date; }
    else { th.appendChild(toggle(day.date)); }
    tr.appendChild(th);
    if (model !== null) { tr.appendChild(cell("td", model, "model")); }
    figures(tr, r, r.members.length);
    return tr;
  }

  function build(group) {
    var first = group.getAttribute("data-first"), last = group.getAttribute("data-last");
    var model = group.getAttribute("data-model"), withModel = model !== null;
    var body = document.createElement("tbody");
    body.className = "detail";
    daysBetween(first, last).forEach(function (day) {
      var r = withModel ? day.models[model] : day;
      if (!r) { return; }
      if (first === last) {
        memberRows(r, withModel, false).forEach(function (tr) { body.appendChild(tr); });
        return;
      }
      var tr = dayRow(day, r, model);
      body.appendChild(tr);
      tr.memberRows = function () { return memberRows(r, withModel, true); };
    });
    group.parentNode.insertBefore(body, group.nextSibling);
    return body;
  }

  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.matches || !details.matches("details")) { return; }
    var tr = details.closest("tr"), open = details.open;
    if (tr.classList.contains("line")) {
      var group = tr.parentNode;
      if (!group.detail) {
        if (!open) { return; }
        group.detail = build(group);
      }
      group.detail.hidden = !open;
    } else if (tr.classList.contains("day")) {
      if (!tr.shown) {
        if (!open) { return; }
        tr.shown = tr.memberRows();
        var next = tr.nextSibling;
        tr.shown.forEach(function (row) { tr.parentNode.insertBefore(row, next); });
      }
      tr.shown.forEach(function (row) { row.hidden = !open; });
    }
  }, true);
  document.documentElement.classList.add("rows-open");
}());
