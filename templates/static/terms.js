// The signup form's "agree to all" checkbox. Without this script the
// checkbox stays hidden and the "agree to all" submit button does the same
// job on the server.
(function () {
  "use strict";
  var all = document.getElementById("terms-all");
  if (!all) return;
  var boxes = Array.prototype.slice.call(document.querySelectorAll('input[name="terms"]'));
  function sync() {
    all.checked = boxes.length > 0 && boxes.every(function (b) { return b.checked; });
  }
  all.addEventListener("change", function () {
    boxes.forEach(function (b) { b.checked = all.checked; });
  });
  boxes.forEach(function (b) { b.addEventListener("change", sync); });
  all.closest(".term").hidden = false;
  sync();
})();
