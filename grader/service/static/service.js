// Signs in from the personal link (its token is after '#', never sent to a server), and keeps the table of
// submissions current while some are queued or running, without reloading the page.
(function () {
  "use strict";
  var login = document.getElementById("login");
  if (login && location.hash.length > 1) {
    document.getElementById("token").value = decodeURIComponent(location.hash.slice(1));
    history.replaceState(null, "", location.pathname);
    login.submit();
    return;
  }
  var table = document.getElementById("submissions");
  if (!table) { return; }

  function statusText(s) {
    if (s.status === "queued" && s.place) { return "queued (" + s.place + " in line)"; }
    if (s.status === "running" && s.cell) { return "running (cell " + s.cell[0] + " of " + s.cell[1] + ")"; }
    if (s.status === "error" && s.message) { return "error: " + s.message; }
    return s.status;
  }

  function refresh() {
    fetch(table.getAttribute("data-poll"), { credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (body) {
        if (!body) { return; }
        var unfinished = false;
        body.submissions.forEach(function (s) {
          var row = table.querySelector('tr[data-id="' + s.id + '"]');
          if (!row) { return; }
          row.querySelector(".status").textContent = statusText(s);
          row.querySelector(".points").textContent =
            s.points === null ? "" : s.points + " / " + s.max_points;
          var cell = row.querySelector(".report");
          if (s.report && !cell.querySelector("a")) {
            var link = document.createElement("a");
            link.href = s.report;
            link.textContent = "report";
            cell.appendChild(link);
          }
          unfinished = unfinished || s.status === "queued" || s.status === "running";
        });
        if (unfinished) { setTimeout(refresh, 1500); }
      });
  }
  if (table.querySelector(".status")) { refresh(); }
})();
