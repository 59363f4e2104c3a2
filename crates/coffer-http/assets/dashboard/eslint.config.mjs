// ESLint for the dashboard's one script (run by .ci/run: `npx eslint@9.39.5`). Plain browser
// JavaScript (one ES module), no build step; every global it uses is listed here.
export default [
  {
    files: ["app.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: Object.fromEntries(
        ["document", "window", "location", "history", "sessionStorage", "localStorage", "fetch", "URL",
          "URLSearchParams", "performance", "matchMedia", "Node", "TextDecoderStream", "AbortController",
          "setTimeout", "clearTimeout"].map((g) => [g, "readonly"]),
      ),
    },
    rules: {
      "no-undef": "error",
      "no-unused-vars": "error",
      "no-unreachable": "error",
      "no-shadow": "error",
      "no-var": "error",
      "prefer-const": "error",
      eqeqeq: "error",
      "no-implicit-globals": "error",
    },
  },
];
