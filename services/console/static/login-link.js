// The login link carries its secret after "#", which browsers never send to a server (so no
// access log holds it). Move it into the form's POST body, drop it from the address bar and
// history, and submit. The console's only script; without it, paste the link into the field.
(function () {
  var secret = window.location.hash.slice(1);
  if (!secret) { return; }
  history.replaceState(null, "", window.location.pathname);
  var form = document.getElementById("login-link-form");
  document.getElementById("secret").value = secret;
  form.submit();
})();
