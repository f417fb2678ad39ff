/*
 * json: parse stdin as JSON into a tree, re-serialise it minified exactly like
 * JS JSON.stringify(JSON.parse(input)), followed by "\n".
 *
 * Supported subset (anything else -> exit status 2 with a message on stderr):
 *  - numbers: integers only, |n| <= 2^53 (printed canonically, so -0 -> 0)
 *  - strings: any escape (\" \\ \/ \b \f \n \r \t \uXXXX incl. surrogate pairs; lone
 *    surrogates are rejected); raw bytes >= 0x80 are copied through unchanged
 *  - objects are printed in input order: keys must be unique and must not look like
 *    array indices ("0", "17"), which JS would move to the front
 * Serialisation follows JSON.stringify: escape " \ \b \f \n \r \t, other bytes < 0x20
 * as \u00xx (lowercase hex), everything else raw.
 */
#include "../support/fx_common.h"

enum { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };
#define MAX_DEPTH 256

typedef struct jval jval;
struct jval {
  int type;
  int64_t num;
  char *str;      /* J_STR: decoded bytes */
  size_t len;
  jval **items;   /* J_ARR / J_OBJ values */
  jval **keys;    /* J_OBJ keys (J_STR nodes) */
  size_t n, cap;
};

typedef struct {
  const unsigned char *p, *end;
  const char *err;
  int depth;
} parser;

typedef struct {
  char *buf;
  size_t len, cap;
  int oom;
} sbuf;

static void sb_put(sbuf *b, const void *data, size_t n) {
  if (b->oom) return;
  if (b->len + n > b->cap) {
    size_t ncap = b->cap ? b->cap : 32;
    while (ncap < b->len + n) ncap *= 2;
    char *nb = realloc(b->buf, ncap);
    if (!nb) { b->oom = 1; return; }
    b->buf = nb;
    b->cap = ncap;
  }
  memcpy(b->buf + b->len, data, n);
  b->len += n;
}
static void sb_ch(sbuf *b, char c) { sb_put(b, &c, 1); }

static void jfree(jval *v) {
  if (!v) return;
  for (size_t i = 0; i < v->n; i++) {
    jfree(v->items[i]);
    if (v->keys) jfree(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  free(v->str);
  free(v);
}

static jval *jnew(parser *ps, int type) {
  jval *v = calloc(1, sizeof *v);
  if (!v) ps->err = "out of memory";
  else v->type = type;
  return v;
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static int hex4(parser *ps, uint32_t *out) {
  if (ps->end - ps->p < 4) return 0;
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned char c = ps->p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
    else return 0;
  }
  ps->p += 4;
  *out = v;
  return 1;
}

static void put_utf8(sbuf *b, uint32_t cp) {
  unsigned char u[4];
  size_t n;
  if (cp < 0x80) { u[0] = (unsigned char)cp; n = 1; }
  else if (cp < 0x800) { u[0] = (unsigned char)(0xc0 | cp >> 6); u[1] = (unsigned char)(0x80 | (cp & 0x3f)); n = 2; }
  else if (cp < 0x10000) {
    u[0] = (unsigned char)(0xe0 | cp >> 12); u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    u[2] = (unsigned char)(0x80 | (cp & 0x3f)); n = 3;
  } else {
    u[0] = (unsigned char)(0xf0 | cp >> 18); u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)); u[3] = (unsigned char)(0x80 | (cp & 0x3f)); n = 4;
  }
  sb_put(b, u, n);
}

/* ps->p is at the opening quote */
static jval *parse_string(parser *ps) {
  ps->p++;
  sbuf b = {0};
  for (;;) {
    if (ps->p >= ps->end) { ps->err = "unterminated string"; break; }
    unsigned char c = *ps->p++;
    if (c == '"') {
      jval *v = jnew(ps, J_STR);
      if (!v || b.oom) { free(b.buf); if (v) free(v); ps->err = "out of memory"; return NULL; }
      v->str = b.buf;
      v->len = b.len;
      return v;
    }
    if (c < 0x20) { ps->err = "raw control character in string"; break; }
    if (c != '\\') { sb_ch(&b, (char)c); continue; }
    if (ps->p >= ps->end) { ps->err = "unterminated escape"; break; }
    c = *ps->p++;
    switch (c) {
      case '"': sb_ch(&b, '"'); continue;
      case '\\': sb_ch(&b, '\\'); continue;
      case '/': sb_ch(&b, '/'); continue;
      case 'b': sb_ch(&b, '\b'); continue;
      case 'f': sb_ch(&b, '\f'); continue;
      case 'n': sb_ch(&b, '\n'); continue;
      case 'r': sb_ch(&b, '\r'); continue;
      case 't': sb_ch(&b, '\t'); continue;
      case 'u': {
        uint32_t cp;
        if (!hex4(ps, &cp)) { ps->err = "bad \\u escape"; goto fail; }
        if (cp >= 0xdc00 && cp <= 0xdfff) { ps->err = "lone low surrogate (unsupported)"; goto fail; }
        if (cp >= 0xd800 && cp <= 0xdbff) {
          uint32_t lo;
          if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') {
            ps->err = "lone high surrogate (unsupported)"; goto fail;
          }
          ps->p += 2;
          if (!hex4(ps, &lo) || lo < 0xdc00 || lo > 0xdfff) {
            ps->err = "lone high surrogate (unsupported)"; goto fail;
          }
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        put_utf8(&b, cp);
        continue;
      }
      default: ps->err = "bad escape"; goto fail;
    }
  }
fail:
  free(b.buf);
  return NULL;
}

static jval *parse_number(parser *ps) {
  int neg = 0;
  if (*ps->p == '-') { neg = 1; ps->p++; }
  if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') { ps->err = "bad number"; return NULL; }
  if (*ps->p == '0' && ps->p + 1 < ps->end && ps->p[1] >= '0' && ps->p[1] <= '9') {
    ps->err = "leading zero"; return NULL;
  }
  uint64_t v = 0;
  while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
    v = v * 10 + (uint64_t)(*ps->p++ - '0');
    if (v > (1ull << 53)) { ps->err = "integer beyond 2^53 (unsupported)"; return NULL; }
  }
  if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E')) {
    ps->err = "fractions/exponents are not supported"; return NULL;
  }
  jval *j = jnew(ps, J_NUM);
  if (j) j->num = neg ? -(int64_t)v : (int64_t)v;
  return j;
}

static int push(parser *ps, jval *parent, jval *key, jval *val) {
  if (parent->n == parent->cap) {
    size_t ncap = parent->cap ? parent->cap * 2 : 4;
    jval **ni = realloc(parent->items, ncap * sizeof *ni);
    if (!ni) { ps->err = "out of memory"; return 0; }
    parent->items = ni;
    if (parent->type == J_OBJ) {
      jval **nk = realloc(parent->keys, ncap * sizeof *nk);
      if (!nk) { ps->err = "out of memory"; return 0; }
      parent->keys = nk;
    }
    parent->cap = ncap;
  }
  parent->items[parent->n] = val;
  if (parent->type == J_OBJ) parent->keys[parent->n] = key;
  parent->n++;
  return 1;
}

static int lit(parser *ps, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return 0;
  ps->p += n;
  return 1;
}

static jval *parse_value(parser *ps) {
  skip_ws(ps);
  if (ps->p >= ps->end) { ps->err = "unexpected end of input"; return NULL; }
  unsigned char c = *ps->p;
  if (c == '"') return parse_string(ps);
  if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps);
  if (c == 't') return lit(ps, "true") ? jnew(ps, J_TRUE) : (ps->err = "bad literal", NULL);
  if (c == 'f') return lit(ps, "false") ? jnew(ps, J_FALSE) : (ps->err = "bad literal", NULL);
  if (c == 'n') return lit(ps, "null") ? jnew(ps, J_NULL) : (ps->err = "bad literal", NULL);
  if (c != '[' && c != '{') { ps->err = "unexpected character"; return NULL; }
  if (++ps->depth > MAX_DEPTH) { ps->err = "nesting too deep"; return NULL; }
  int is_obj = c == '{';
  unsigned char close = is_obj ? '}' : ']';
  jval *v = jnew(ps, is_obj ? J_OBJ : J_ARR);
  if (!v) return NULL;
  ps->p++;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == close) { ps->p++; ps->depth--; return v; }
  for (;;) {
    jval *key = NULL;
    if (is_obj) {
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != '"') { ps->err = "expected object key"; goto fail; }
      if (!(key = parse_string(ps))) goto fail;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') { jfree(key); ps->err = "expected ':'"; goto fail; }
      ps->p++;
    }
    jval *item = parse_value(ps);
    if (!item) { jfree(key); goto fail; }
    if (!push(ps, v, key, item)) { jfree(key); jfree(item); goto fail; }
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
    if (ps->p < ps->end && *ps->p == close) { ps->p++; ps->depth--; return v; }
    ps->err = is_obj ? "expected ',' or '}'" : "expected ',' or ']'";
    goto fail;
  }
fail:
  jfree(v);
  return NULL;
}

static void emit_string(sbuf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  sb_ch(b, '"');
  size_t run = 0; /* bytes copied verbatim in one go */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[6];
    switch (c) {
      case '"': esc = "\\\""; break;
      case '\\': esc = "\\\\"; break;
      case '\b': esc = "\\b"; break;
      case '\f': esc = "\\f"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      default:
        if (c >= 0x20) continue;
    }
    sb_put(b, s + run, i - run);
    run = i + 1;
    if (esc) sb_put(b, esc, 2);
    else {
      u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0'; u[4] = hex[c >> 4]; u[5] = hex[c & 15];
      sb_put(b, u, 6);
    }
  }
  sb_put(b, s + run, n - run);
  sb_ch(b, '"');
}

static void emit(sbuf *b, const jval *v) {
  switch (v->type) {
    case J_NULL: sb_put(b, "null", 4); return;
    case J_FALSE: sb_put(b, "false", 5); return;
    case J_TRUE: sb_put(b, "true", 4); return;
    case J_NUM: {
      char tmp[32];
      int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v->num);
      sb_put(b, tmp, (size_t)n);
      return;
    }
    case J_STR: emit_string(b, v->str, v->len); return;
    default: {
      int obj = v->type == J_OBJ;
      sb_ch(b, obj ? '{' : '[');
      for (size_t i = 0; i < v->n; i++) {
        if (i) sb_ch(b, ',');
        if (obj) { emit_string(b, v->keys[i]->str, v->keys[i]->len); sb_ch(b, ':'); }
        emit(b, v->items[i]);
      }
      sb_ch(b, obj ? '}' : ']');
    }
  }
}

int main(void) {
  size_t len;
  unsigned char *in = fx_read_all(&len);
  if (!in) { fputs("json: cannot read input\n", stderr); return 1; }
  parser ps = {in, in + len, NULL, 0};
  jval *root = parse_value(&ps);
  if (root) {
    skip_ws(&ps);
    if (ps.p != ps.end) { ps.err = "trailing characters after value"; jfree(root); root = NULL; }
  }
  if (!root) {
    fprintf(stderr, "json: parse error at byte %ld: %s\n", (long)(ps.p - in),
            ps.err ? ps.err : "unknown");
    free(in);
    return 2;
  }
  free(in);
  sbuf out = {0};
  emit(&out, root);
  sb_ch(&out, '\n');
  jfree(root);
  if (out.oom) { free(out.buf); fputs("json: out of memory\n", stderr); return 1; }
  fwrite(out.buf, 1, out.len, stdout);
  free(out.buf);
  return 0;
}
