"use strict"; document.getElementById("status").textContent = "placeholder";
