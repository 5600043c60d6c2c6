// Types for the part of mvdan-sh (the GopherJS build of mvdan.cc/sh/v3/syntax) Warden uses. The package ships
// none. Parse returns a JavaScript wrapper of the Go `*syntax.File`; Warden reads the Go struct behind it
// (`__internal_object__`, see parse-shell-script.ts), so the node types are not declared here.
declare module 'mvdan-sh' {
  interface Parser {
    /** Throws a Go error object (not an `Error`) on a syntax error. */
    Parse(src: string, name: string): unknown;
  }
  type ParserOption = { readonly __parserOption?: never };
  interface Syntax {
    NewParser(...options: ParserOption[]): Parser;
    KeepComments(keep: boolean): ParserOption;
    Variant(lang: unknown): ParserOption;
    LangBash: unknown;
  }
  const sh: { syntax: Syntax };
  export default sh;
}
