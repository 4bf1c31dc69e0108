// Marks every inline diagram the browser has laid out with a real size, so the book's browser
// test (`cargo xtask book --check`) can tell a displayed drawing from a broken one.
(function () {
  function mark() {
    document.querySelectorAll("svg.diagram").forEach(function (svg) {
      var box = svg.getBoundingClientRect();
      svg.setAttribute("data-rendered", box.width > 50 && box.height > 20 ? "yes" : "no");
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mark);
  } else {
    mark();
  }
})();
