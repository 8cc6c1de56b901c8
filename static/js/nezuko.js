// Nezuko's only script besides htmx: the Content-Security-Policy allows no
// inline script, so behaviour that used to sit in on* attributes lives here.
document.addEventListener("click", (event) => {
  // <button data-dismiss>: removes the message it sits in (flash messages).
  const button = event.target.closest("[data-dismiss]");
  if (button) button.parentElement.remove();
});
