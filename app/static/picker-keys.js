// Typeahead pickers by keyboard: from the search field, ArrowDown moves to the first match
// htmx brought back (then the arrow keys move among the matches and check them, as radio
// buttons do), and ArrowUp on the first match goes back to the field.
(function () {
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (!target || !target.closest) { return; }
    var picker = target.closest(".picker");
    if (!picker) { return; }
    var options = picker.querySelectorAll('.picker-options input[type="radio"]');
    if (event.key === "ArrowDown" && target.type === "search" && options.length) {
      event.preventDefault();
      var chosen = picker.querySelector('.picker-options input[type="radio"]:checked') || options[0];
      chosen.focus();
      chosen.checked = true;
    } else if (event.key === "ArrowUp" && target === options[0]) {
      event.preventDefault();
      var field = picker.querySelector('input[type="search"]');
      if (field) { field.focus(); }
    }
  });
})();
