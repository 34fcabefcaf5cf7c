// Follows a running job: polls its status in the API and moves the progress bar;
// when the job has ended, reloads the page, which then shows the outcome and the list.
// While a site restore runs the API answers 503 (maintenance): the poll goes on.
// Without JavaScript the job page refreshes itself instead (<noscript> meta refresh).
(function () {
  "use strict";
  var box = document.getElementById("sr-job");
  if (!box || box.getAttribute("data-state") !== "running") return;
  var bar = document.getElementById("sr-progress");
  var step = document.getElementById("sr-step");
  var percent = document.getElementById("sr-percent");
  var state = document.getElementById("sr-state");

  var eta = document.getElementById("sr-eta");

  // The phase in words, the percentage of the whole operation (it never goes back), the
  // time left once the server can estimate it, and at the end what became of it: the
  // box's data-outcome colours the bar (done, rolled back, refused, failed).
  function show(job) {
    step.textContent = job.step;
    state.textContent = job.outcome_words;
    bar.value = job.percent;
    percent.textContent = job.percent + "%";
    eta.textContent = job.eta || "";
    box.setAttribute("data-outcome", job.outcome || "");
  }

  function poll() {
    fetch(box.getAttribute("data-job-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        // 503: a site restore is replacing the users too; ask again until it is over.
        if (response.status === 503) { return null; }
        return response.json();
      })
      .then(function (body) {
        if (body === null) {
          window.setTimeout(poll, 1000);
          return;
        }
        show(body.job);
        if (body.job.state === "running") {
          window.setTimeout(poll, 400);
        } else {
          window.setTimeout(function () { window.location.reload(); }, 300);
        }
      })
      .catch(function () { window.setTimeout(poll, 2000); });
  }

  window.setTimeout(poll, 300);
})();
