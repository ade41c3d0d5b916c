// fvjax atlas: the jump-to-unit box and arrow-key navigation. No dependencies, no network.
(function () {
  "use strict";
  function jump(form, event) {
    event.preventDefault();
    var input = form.querySelector("input");
    var message = document.getElementById("jump-message");
    var value = parseInt(input.value, 10);
    var units = form.getAttribute("data-units").split(",").map(Number);
    if (isNaN(value) || units.indexOf(value) < 0) {
      message.textContent = "unit " + input.value + " is not in this atlas (" +
        form.getAttribute("data-range") + ")";
      return;
    }
    window.location.href = form.getAttribute("data-prefix") + value + ".html";
  }
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("jump");
    if (form) {
      form.addEventListener("submit", function (event) { jump(form, event); });
    }
    document.addEventListener("keydown", function (event) {
      if (event.target && event.target.tagName === "INPUT") { return; }
      var rel = event.key === "ArrowLeft" ? "prev" : event.key === "ArrowRight" ? "next" : null;
      var link = rel && document.querySelector('a[rel="' + rel + '"]');
      if (link) { window.location.href = link.getAttribute("href"); }
    });
  });
}());
