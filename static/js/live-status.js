/* Live progress without a framework: polls a JSON status endpoint and updates the page.
 *
 * Markup (server-rendered, so the page is complete without JavaScript):
 *
 *   <section data-live-status-url="/…/status/" [data-live-interval="2000"]>
 *     <div data-live-key="run-12">
 *       <progress data-live-percent max="100" value="40">40 %</progress>
 *       <span data-live-label>Running: 40 %</span>
 *       <span data-live-badge class="badge running">running</span>
 *       <span data-live-detail></span>
 *     </div>
 *   </section>
 *
 * The endpoint answers {"items": [{"key", "status", "percent", "label", "detail",
 * "done"}, …], "done": bool}. Items are matched by key; polling stops once "done" is true.
 * When an item that was still running on this page finishes, the page reloads once so
 * that what depends on the outcome (a Re-run button, the results) is rendered by the
 * server.
 */
(function () {
  "use strict";

  function update(root, item) {
    var selector = '[data-live-key="' + item.key + '"]';
    var node = root.querySelector(selector);
    if (!node) return false;
    var wasDone = node.getAttribute("data-live-done") === "true";
    node.setAttribute("data-live-done", item.done ? "true" : "false");
    node.setAttribute("data-live-state", item.status);
    node.querySelectorAll("[data-live-percent]").forEach(function (bar) {
      bar.value = item.percent;
      bar.textContent = item.percent + " %";
    });
    node.querySelectorAll("[data-live-label]").forEach(function (el) {
      el.textContent = item.label;
    });
    node.querySelectorAll("[data-live-detail]").forEach(function (el) {
      el.textContent = item.detail || "";
    });
    node.querySelectorAll("[data-live-badge]").forEach(function (el) {
      el.className = "badge " + item.status;
      el.textContent = item.status;
    });
    return item.done && !wasDone;
  }

  function poll(root) {
    var url = root.getAttribute("data-live-status-url");
    var interval = parseInt(root.getAttribute("data-live-interval"), 10) || 2000;
    var failures = 0;

    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (data) {
          failures = 0;
          var finished = false;
          (data.items || []).forEach(function (item) {
            if (update(root, item)) finished = true;
          });
          if (finished) {
            window.location.reload();
            return;
          }
          if (!data.done) window.setTimeout(tick, interval);
        })
        .catch(function () {
          failures += 1; // back off while the server is unreachable, then give up
          if (failures < 10) window.setTimeout(tick, interval * Math.pow(2, failures));
        });
    }

    window.setTimeout(tick, interval);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live-status-url]").forEach(poll);
  });
})();
