/* One test per class of model error: the status, the exact line, column and message of the
 * first diagnostic (and of its note), the caret display, and that one mistake gives one
 * message. */
#include <stdlib.h>

#include "lang_util.h"

typedef struct ecase {
  const char *name;
  const char *src;
  nde_status status;
  int line, col;
  const char *message;
  int note_line, note_col; /* 0: no note expected */
  const char *note;
} ecase;

static const ecase cases[] = {
    {"unexpected token", "state x\ndx/dt = x + * 2\n", NDE_ERR_PARSE, 2, 13,
     "unexpected '*' (expected an expression)", 0, 0, NULL},
    {"unexpected end of line", "state x\ndx/dt = exp(x\n", NDE_ERR_PARSE, 2, 14,
     "unexpected end of line (expected ',' or ')')", 0, 0, NULL},
    {"statement that is not one", "state x\nx + 1\ndx/dt = x\n", NDE_ERR_PARSE, 2, 1,
     "unexpected name 'x' (expected a declaration (state, param, net, input, const, observe), an equation dx/dt = ... or name = ...)",
     0, 0, NULL},
    {"unknown name with a hint", "state x\nparam alpha = 1\ndx/dt = alpah*x\n", NDE_ERR_MODEL, 3, 9,
     "unknown name 'alpah' (did you mean 'alpha'?)", 0, 0, NULL},
    {"unknown name without a hint", "state x\ndx/dt = zeta*x\n", NDE_ERR_MODEL, 2, 9,
     "unknown name 'zeta'", 0, 0, NULL},
    {"unknown function with a hint", "state x\ndx/dt = sine(x)\n", NDE_ERR_MODEL, 2, 9,
     "unknown function or net 'sine' (did you mean 'sin'?)", 0, 0, NULL},
    {"duplicate declaration", "state x\nparam x = 1\ndx/dt = x\n", NDE_ERR_MODEL, 2, 7,
     "'x' is already declared (as a state)", 1, 7, "'x' was first declared here"},
    {"duplicate net and intermediate", "state x\nnet U : 1 -> 1\nU = 2*x\ndx/dt = U(x)\n",
     NDE_ERR_MODEL, 3, 1, "'U' is already declared (as a net)", 2, 5, "'U' was first declared here"},
    {"reserved name", "state t\ndt/dt = 1\n", NDE_ERR_MODEL, 1, 7,
     "'t' is a reserved name (the time)", 0, 0, NULL},
    {"state without an equation", "state x, y\ndx/dt = y\n", NDE_ERR_MODEL, 1, 10,
     "state 'y' has no equation (expected a line 'dy/dt = ...')", 0, 0, NULL},
    {"state with two equations", "state x\ndx/dt = 1\ndx/dt = 2\n", NDE_ERR_MODEL, 3, 2,
     "second equation for state 'x'", 2, 2, "the first equation for 'x' is here"},
    {"equation for an unknown state", "state x\ndx/dt = x\ndz/dt = x\n", NDE_ERR_MODEL, 3, 2,
     "equation for unknown state 'z'", 0, 0, NULL},
    {"equation for a parameter", "state x\nparam k = 1\ndx/dt = x\ndk/dt = x\n", NDE_ERR_MODEL, 4, 2,
     "equation for 'k', which is a parameter, not a state", 0, 0, NULL},
    {"net input size mismatch", "state x, y\nnet U : 2 -> 3 tanh -> 2\nu = U(x)\ndx/dt = u[1]\ndy/dt = u[2]\n",
     NDE_ERR_MODEL, 3, 5, "net 'U' takes 2 inputs, got 1", 0, 0, NULL},
    {"net output size mismatch", "state y[2]\nnet f : 2 -> 3 tanh -> 3\ndy/dt = f(y)\n", NDE_ERR_MODEL,
     3, 9, "net 'f' gives 3 outputs but state 'y' has size 2", 0, 0, NULL},
    {"elementwise size mismatch", "state y[2], z[3]\ndy/dt = y\ndz/dt = z + y\n", NDE_ERR_MODEL, 3, 11,
     "sizes do not match in '+': 3 on the left, 2 on the right (expected equal sizes, or a scalar on one side)",
     0, 0, NULL},
    {"unknown activation", "state x\nnet U : 1 -> 4 tanhh -> 1\ndx/dt = U(x)\n", NDE_ERR_MODEL, 2, 16,
     "unknown activation 'tanhh' (expected identity, tanh, relu, softplus, sigmoid, gelu or rbf)", 0, 0,
     NULL},
    {"index out of range", "state x, y\nnet U : 2 -> 2\nu = U(x, y)\ndx/dt = u[3]\ndy/dt = u[2]\n",
     NDE_ERR_MODEL, 4, 11, "index 3 out of range for u[1..2] (indices are 1-based)", 0, 0, NULL},
    {"index zero", "state y[2]\ndy/dt = [y[0], y[1]]\n", NDE_ERR_MODEL, 2, 12,
     "index 0 out of range for y[1..2] (indices are 1-based)", 0, 0, NULL},
    {"grad of a vector", "state q, p\nnet H : 2 -> 4 tanh -> 2\ndq/dt = grad(H(q, p), p)\ndp/dt = q\n",
     NDE_ERR_MODEL, 3, 14,
     "grad needs a scalar expression, got one of size 2 (take a component, e.g. grad(E[1], x), or a sum of components)",
     0, 0, NULL},
    {"grad with respect to a parameter", "state q\nparam k = 1\ndq/dt = grad(k*q^2, k)\n", NDE_ERR_MODEL,
     3, 21,
     "grad takes derivatives with respect to states (expected a state, a component such as y[2], or a list of them such as [q, p])",
     0, 0, NULL},
    {"grad with respect to the time", "state q\ndq/dt = grad(q*t, [q, t])\n", NDE_ERR_MODEL, 2, 23,
     "grad takes derivatives with respect to states, not the time t", 0, 0, NULL},
    {"grad through a relu net", "state q, p\nnet H : 2 -> 4 relu -> 1\ndq/dt = grad(H(q, p), p)\ndp/dt = -q\n",
     NDE_ERR_MODEL, 3, 9,
     "grad differentiates through net 'H', which has a relu layer: its gradient would be piecewise "
     "constant in the states and its second derivatives zero (use softplus, a smooth relu)",
     2, 5, "net 'H' is declared here"},
    {"grad of the gradient of a net",
     "state q, p\nnet H : 2 -> 4 tanh -> 1\ng = grad(H(q, p), [q, p])\ndq/dt = grad(g[1], p)\ndp/dt = -q\n",
     NDE_ERR_MODEL, 4, 9,
     "grad of an expression that contains the gradient of net 'H' (third derivatives of nets are not supported)",
     0, 0, NULL},
    {"juxtaposition without a matrix", "state x, y\ndx/dt = y x\ndy/dt = x\n", NDE_ERR_MODEL, 2, 11,
     "'y' is not a matrix: two values side by side are a matrix product (write a*b for a product "
     "of numbers; indices are integer literals, e.g. y[2])", 0, 0, NULL},
    {"matrix times a vector of the wrong size", "state y[3]\nM = [[1, 2], [3, 4]]\ndy/dt = M y\n",
     NDE_ERR_MODEL, 3, 11, "sizes do not match in a product: a 2 x 2 matrix times a vector of size 3 (expected 2)",
     0, 0, NULL},
    {"matrix plus a vector", "state y[2]\nM = [[1, 2], [3, 4]]\ndy/dt = M + y\n", NDE_ERR_MODEL, 3, 11,
     "shapes do not match in '+': a 2 x 2 matrix on the left, size 2 on the right (expected the "
     "same shape, or a scalar; a matrix times a vector is written M v)", 0, 0, NULL},
    {"rows of different sizes", "state y[2]\nM = [[1, 2], [3]]\ndy/dt = M y\n", NDE_ERR_MODEL, 2, 14,
     "rows of a matrix have different sizes: 2 and 1", 0, 0, NULL},
    {"matrix on the right-hand side", "state y[4]\ndy/dt = [[y[1], y[2]], [y[3], y[4]]]\n",
     NDE_ERR_MODEL, 2, 9, "the right-hand side is a 2 x 2 matrix (expected a vector: multiply it by one, e.g. M v)",
     0, 0, NULL},
    {"matrix into a net", "state y[4]\nnet U : 4 -> 2 tanh -> 4\ndy/dt = U([[y[1], y[2]], [y[3], y[4]]])\n",
     NDE_ERR_MODEL, 3, 11, "a matrix cannot be the input of net 'U' (expected scalars and vectors)", 0, 0, NULL},
    {"list equation size", "state q, p[2]\nd[q, p]/dt = [p, 1, q]\n", NDE_ERR_MODEL, 2, 2,
     "right-hand side has size 4 but the states listed have 3 components", 0, 0, NULL},
    {"list equation and a second one", "state q, p\nd[q, p]/dt = [p, -q]\ndp/dt = 1\n", NDE_ERR_MODEL, 3, 2,
     "second equation for state 'p'", 2, 2, "the first equation for 'p' is here"},
    {"list equation for a parameter", "state q\nparam k = 1\nd[q, k]/dt = [q, q]\n", NDE_ERR_MODEL, 3, 6,
     "equation for 'k', which is a parameter, not a state", 0, 0, NULL},
    {"cycle among intermediates", "state x\na = b + x\nb = 2*c\nc = a\ndx/dt = a\n", NDE_ERR_MODEL, 2, 1,
     "cycle among intermediates: a -> b -> c -> a", 0, 0, NULL},
    {"bad number literal", "state x\ndx/dt = 1.2.3*x\n", NDE_ERR_PARSE, 2, 9,
     "bad number literal '1.2.3' (a second decimal point)", 0, 0, NULL},
    {"bad exponent", "state x\ndx/dt = 1e+*x\n", NDE_ERR_PARSE, 2, 9,
     "bad number literal '1e+' (expected digits after the exponent)", 0, 0, NULL},
    {"number glued to a name", "state x\ndx/dt = 2x\n", NDE_ERR_PARSE, 2, 9,
     "bad number literal '2x' (a name cannot start with a digit)", 0, 0, NULL},
    {"number too large", "state x\ndx/dt = 1e999*x\n", NDE_ERR_PARSE, 2, 9,
     "bad number literal '1e999' (too large for a double)", 0, 0, NULL},
    {"positive parameter that is not", "state x\nparam k = -0.5 (positive)\ndx/dt = k*x\n", NDE_ERR_MODEL,
     2, 11, "positive parameter 'k' has value -0.5 (expected > 0)", 0, 0, NULL},
    {"value outside its bounds", "state x\nparam k = 3 (in [0, 1])\ndx/dt = k*x\n", NDE_ERR_MODEL, 2, 11,
     "parameter 'k' has value 3 outside its bounds (0, 1) (expected strictly inside)", 0, 0, NULL},
    {"wrong number of arguments", "state x\ndx/dt = exp(x, x)\n", NDE_ERR_MODEL, 2, 9,
     "'exp' takes 1 argument, got 2", 0, 0, NULL},
    {"a parameter called like a function", "state x\nparam k = 2\ndx/dt = k(x + 1)\n", NDE_ERR_MODEL, 3, 9,
     "'k' is a parameter, not a function or net (write k*(...) for a product)", 0, 0, NULL},
    {"a net used as a value", "state x\nnet U : 1 -> 1\ndx/dt = U*x\n", NDE_ERR_MODEL, 3, 9,
     "'U' is a net: call it with its inputs, e.g. U(x)", 0, 0, NULL},
    {"no state", "param k = 1\n", NDE_ERR_MODEL, 1, 1,
     "the model declares no state (expected e.g. 'state x, y')", 0, 0, NULL},
    {"columns count characters", "state α\ndα/dt = -β*α\n", NDE_ERR_MODEL, 2, 10, "unknown name 'β'", 0, 0,
     NULL},
    /* built-in functions, comparisons, per-series parameters, constants, inputs, observables */
    {"too few arguments", "state x\ndx/dt = min(x)\n", NDE_ERR_MODEL, 2, 9,
     "'min' takes 2 arguments, got 1", 0, 0, NULL},
    {"too few arguments of clamp", "state x\ndx/dt = clamp(x, 1)\n", NDE_ERR_MODEL, 2, 9,
     "'clamp' takes 3 arguments, got 2", 0, 0, NULL},
    {"too many arguments of step", "state x\ndx/dt = step(x, 0)\n", NDE_ERR_MODEL, 2, 9,
     "'step' takes 1 argument, got 2", 0, 0, NULL},
    {"argument sizes of min", "state y[2], z[3]\ndy/dt = y\ndz/dt = min(z, y)\n", NDE_ERR_MODEL, 3, 9,
     "sizes of the arguments of 'min' do not match: 3 and 2 (expected equal sizes, or a scalar)", 0, 0, NULL},
    {"argument sizes of ifelse", "state x, y[2], z[3]\ndx/dt = x\ndy/dt = y\ndz/dt = ifelse(z, y, 1)\n",
     NDE_ERR_MODEL, 4, 9,
     "sizes of the arguments of 'ifelse' do not match: 3, 2 and 1 (expected equal sizes, or scalars)", 0, 0, NULL},
    {"comparison sizes", "state y[2], z[3]\ndy/dt = y\ndz/dt = z < y\n", NDE_ERR_MODEL, 3, 11,
     "sizes do not match in '<': 3 on the left, 2 on the right (expected equal sizes, or a scalar on one side)",
     0, 0, NULL},
    {"comparisons do not chain", "state x\ndx/dt = 0 < x < 1\n", NDE_ERR_PARSE, 2, 15,
     "comparisons do not chain (write (a < b) * (b < c) for both)", 0, 0, NULL},
    {"fixed and per series", "state x\nparam k = 1 (fixed, per series)\ndx/dt = k*x\n", NDE_ERR_MODEL, 2, 21,
     "parameter 'k' is both 'fixed' and 'per series' (for a known value per series use 'const k (from data)')",
     0, 0, NULL},
    {"per without series", "state x\nparam k = 1 (per x)\ndx/dt = k*x\n", NDE_ERR_PARSE, 2, 18,
     "unexpected name 'x' (expected 'series' after 'per')", 0, 0, NULL},
    {"positive per series that is not", "state x\nparam k = -1 (per series, positive)\ndx/dt = k*x\n",
     NDE_ERR_MODEL, 2, 11, "positive parameter 'k' has value -1 (expected > 0)", 0, 0, NULL},
    {"constant without a value", "state x\nconst g\ndx/dt = g*x\n", NDE_ERR_MODEL, 2, 7,
     "constant 'g' has no value (expected 'const g = 1.5' or 'const g (from data)')", 0, 0, NULL},
    {"constant from data with a value", "state x\nconst g = 9.8 (from data)\ndx/dt = g*x\n", NDE_ERR_MODEL,
     2, 11, "constant 'g' is from data and cannot have a value in the file", 0, 0, NULL},
    {"constant from something else", "state x\nconst g (from file)\ndx/dt = g*x\n", NDE_ERR_PARSE, 2, 15,
     "unexpected name 'file' (expected 'data' after 'from')", 0, 0, NULL},
    {"two interpolations", "state x\ninput u (cubic, step)\ndx/dt = u\n", NDE_ERR_MODEL, 2, 17,
     "'step' after 'cubic' (an input has one interpolation: linear, cubic or step)", 0, 0, NULL},
    {"unknown input option", "state x\ninput u (spline)\ndx/dt = u\n", NDE_ERR_PARSE, 2, 10,
     "unexpected name 'spline' (expected 'linear', 'cubic', 'step' or 'hold')", 0, 0, NULL},
    {"an input called like a function", "state x\ninput u\ndx/dt = u(x)\n", NDE_ERR_MODEL, 3, 9,
     "'u' is an input, not a function or net (write u*(...) for a product)", 0, 0, NULL},
    {"equation for an input", "state x\ninput u\ndx/dt = x\ndu/dt = x\n", NDE_ERR_MODEL, 4, 2,
     "equation for 'u', which is an input, not a state", 0, 0, NULL},
    {"duplicate input and constant", "state x\ninput u\nconst u = 1\ndx/dt = u\n", NDE_ERR_MODEL, 3, 7,
     "'u' is already declared (as an input)", 2, 7, "'u' was first declared here"},
    {"vector observable", "state y[2]\nobserve h = y*2\ndy/dt = y\n", NDE_ERR_MODEL, 2, 9,
     "observable 'h' has size 2 (expected a scalar: one observe line per quantity)", 0, 0, NULL},
    {"observable written as an equation", "state x\nobserve dx/dt = x\ndx/dt = x\n", NDE_ERR_PARSE, 2, 11,
     "unexpected '/' (expected '=' in observe NAME = expression)", 0, 0, NULL},
    {"a built-in name as a state", "state step\ndstep/dt = 1\n", NDE_ERR_MODEL, 1, 7,
     "'step' is a reserved name (a built-in function)", 0, 0, NULL},
    {"a keyword as a name", "state x\ninput = 2\ndx/dt = x\n", NDE_ERR_MODEL, 2, 1,
     "'input' is a reserved name (a keyword)", 0, 0, NULL},
    /* limits, checked before anything is allocated */
    {"state size limit", "state y[5000]\ndy/dt = y\n", NDE_ERR_LIMIT, 1, 9,
     "state size is larger than the limit of 4096", 0, 0, NULL},
    {"layer width limit", "state x\nnet U : 1 -> 100000 -> 1\ndx/dt = U(x)\n", NDE_ERR_LIMIT, 2, 14,
     "layer width 100000 of net 'U' is larger than the limit of 4096", 0, 0, NULL},
    {"state count limit", "state a[3000], b[2000]\nda/dt = a\ndb/dt = b\n", NDE_ERR_LIMIT, 1, 16,
     "more than 4096 state components (the limit of a model)", 0, 0, NULL},
    /* issue 16: 50 M learnable values passed nde check (and 1 G allocated 8 GB in simulate) */
    {"learnable values limit",
     "state x = 1\nparam k = 2\nnet U : 1 -> 4096 tanh -> 4096 tanh -> 4096 tanh -> 4096 tanh -> 1\n"
     "dx/dt = k*U(x)\n",
     NDE_ERR_LIMIT, 3, 5,
     "net 'U' has 50356225 weights and brings the model to 50356226 learnable values, more than "
     "the limit of 10000000 (expected a smaller net)", 0, 0, NULL},
    {"bounds whose width overflows", "state x\nparam k = 1 (in [-1e308, 1e308])\ndx/dt = -k*x\n",
     NDE_ERR_MODEL, 2, 14,
     "bounds [-1e+308, 1e+308] of parameter 'k' are too wide (expected hi - lo to be a finite "
     "number, at most 1.79769e+308)", 0, 0, NULL},
};
#define N_CASES (sizeof cases / sizeof *cases)

static void check_case(const ecase *c) {
  nde_model *m = NULL;
  nde_status st = nde_model_load_string(c->src, strlen(c->src), "bad.nde", &m, NULL);
  assert_non_null(m);
  if (st != c->status) print_error("%s: status %s, expected %s\n", c->name, nde_status_str(st), nde_status_str(c->status));
  assert_int_equal(st, c->status);
  nde_model_diag d;
  assert_true(nde_model_n_diags(m) >= 1);
  assert_int_equal(nde_model_get_diag(m, 0, &d), NDE_OK);
  if (d.line != c->line || d.col != c->col || strcmp(d.message, c->message) != 0)
    print_error("%s: got %d:%d: %s\n", c->name, d.line, d.col, d.message);
  assert_int_equal(d.is_note, 0);
  assert_string_equal(d.message, c->message);
  assert_int_equal(d.line, c->line);
  assert_int_equal(d.col, c->col);
  if (c->note) {
    assert_true(nde_model_n_diags(m) >= 2);
    assert_int_equal(nde_model_get_diag(m, 1, &d), NDE_OK);
    assert_int_equal(d.is_note, 1);
    assert_string_equal(d.message, c->note);
    assert_int_equal(d.line, c->note_line);
    assert_int_equal(d.col, c->note_col);
  } else if (nde_model_n_diags(m) >= 2) {
    assert_int_equal(nde_model_get_diag(m, 1, &d), NDE_OK);
    assert_int_equal(d.is_note, 0);
  }
  /* A failed model has nothing to offer but its messages. */
  assert_int_equal(nde_model_state_dim(m), 0);
  assert_int_equal(nde_model_n_theta(m), 0);
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_model_create_rhs(m, 1, &rhs, NULL), NDE_ERR_ARG);
  nde_model_destroy(&m);
}

static void test_case(void **state) { check_case(*state); }

static void test_message_shows_the_line_and_a_caret(void **state) {
  (void)state;
  const char *src = "state x\nparam alpha = 1\ndx/dt = alpah*x\n";
  nde_model *m = NULL;
  assert_int_equal(nde_model_load_string(src, strlen(src), "lv.nde", &m, NULL), NDE_ERR_MODEL);
  assert_string_equal(nde_model_errmsg(m),
                      "lv.nde:3:9: error: unknown name 'alpah' (did you mean 'alpha'?)\n"
                      "    3 | dx/dt = alpah*x\n"
                      "      |         ^\n");
  nde_model_destroy(&m);
}

/* Three independent mistakes: three messages, in order, none caused by another. */
static void test_each_mistake_gives_one_message(void **state) {
  (void)state;
  const char *src =
      "state x, y\n"
      "param k = 1 (fixd)\n"    /* a syntax error silences the rest of its line */
      "dx/dt = (x + ) * k * *\n"
      "dy/dt = 1.5.5 + $\n";
  nde_model *m = NULL;
  assert_int_equal(nde_model_load_string(src, strlen(src), "m.nde", &m, NULL), NDE_ERR_PARSE);
  assert_int_equal(nde_model_n_diags(m), 3);
  nde_model_diag d;
  const int lines[3] = {2, 3, 4}, cols[3] = {14, 14, 9};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(nde_model_get_diag(m, i, &d), NDE_OK);
    assert_int_equal(d.line, lines[i]);
    assert_int_equal(d.col, cols[i]);
  }
  nde_model_destroy(&m);
  /* An unknown name used many times is reported where it is used, but only a few are shown. */
  const char *many = "state x\ndx/dt = a+b+c+d+e+f+g+h+i\n";
  assert_int_equal(nde_model_load_string(many, strlen(many), "m.nde", &m, NULL), NDE_ERR_MODEL);
  assert_int_equal(nde_model_n_diags(m), 6);
  assert_non_null(strstr(nde_model_errmsg(m), "m.nde: 3 more errors not shown\n"));
  nde_model_destroy(&m);
}

static void test_nesting_deeper_than_the_limit_is_refused(void **state) {
  (void)state;
  char src[512] = "state x\ndx/dt = ";
  size_t k = strlen(src);
  for (int i = 0; i < 100; i++) src[k++] = '(';
  src[k++] = 'x';
  for (int i = 0; i < 100; i++) src[k++] = ')';
  src[k++] = '\n';
  src[k] = '\0';
  nde_model *m = NULL;
  assert_int_equal(nde_model_load_string(src, k, "deep.nde", &m, NULL), NDE_ERR_LIMIT);
  nde_model_diag d;
  assert_int_equal(nde_model_get_diag(m, 0, &d), NDE_OK);
  assert_string_equal(d.message, "expression nested deeper than 64 levels");
  assert_int_equal(d.line, 2);
  assert_int_equal(d.col, 9 + 64);
  nde_model_destroy(&m);
  /* A long flat chain is fine up to its own limit. */
  char *chain = malloc(20000);
  strcpy(chain, "state x\ndx/dt = x");
  for (int i = 0; i < 2000; i++) strcat(chain, "+x");
  strcat(chain, "\n");
  assert_int_equal(nde_model_load_string(chain, strlen(chain), "long.nde", &m, NULL), NDE_ERR_LIMIT);
  assert_int_equal(nde_model_get_diag(m, 0, &d), NDE_OK);
  assert_string_equal(d.message, "expression is too long (more than 1000 operations in a chain)");
  nde_model_destroy(&m);
  free(chain);
}

static void test_file_larger_than_the_limit_is_refused(void **state) {
  (void)state;
  size_t n = NDE_MODEL_MAX_FILE_BYTES + 10;
  char *big = malloc(n);
  memset(big, '#', n);
  nde_model *m = NULL;
  assert_int_equal(nde_model_load_string(big, n, "big.nde", &m, NULL), NDE_ERR_LIMIT);
  assert_string_equal(nde_model_errmsg(m),
                      "big.nde:1:1: error: file is 1048586 bytes, more than the limit of 1048576\n"
                      "    1 | \n"
                      "      | ^\n");
  nde_model_destroy(&m);
  free(big);
}

/* Issue 16: a model whose size passes every per-line limit but whose total would exhaust memory
 * is refused at load, at the place that crossed the limit; models just below load. */
static void test_model_size_limits_are_refused_at_load(void **state) {
  (void)state;
  nde_model *m = NULL;
  nde_model_diag d;
  /* The reproduction: 63 hidden layers of 4096 (1.04e9 weights). */
  char *src = malloc(1 << 16);
  strcpy(src, "state x, y\nnet U : 2");
  for (int l = 0; l < 63; l++) strcat(src, " -> 4096 tanh");
  strcat(src, " -> 2\nu = U(x, y)\ndx/dt = u[1]\ndy/dt = u[2]\n");
  assert_int_equal(nde_model_load_string(src, strlen(src), "deep.nde", &m, NULL), NDE_ERR_LIMIT);
  assert_int_equal(nde_model_get_diag(m, 0, &d), NDE_OK);
  assert_int_equal(d.line, 2);
  assert_int_equal(d.col, 5);
  assert_string_equal(d.message, "net 'U' has 1040461826 weights and brings the model to 1040461826 "
                                 "learnable values, more than the limit of 10000000 (expected a "
                                 "smaller net)");
  nde_model_destroy(&m);
  /* 9.0 M weights load. */
  strcpy(src, "state x\nnet U : 1 -> 3000 tanh -> 3000 tanh -> 1\ndx/dt = U(x)\n");
  assert_int_equal(nde_model_load_string(src, strlen(src), "wide.nde", &m, NULL), NDE_OK);
  assert_int_equal(nde_model_n_theta(m), 9012001);
  nde_model_destroy(&m);
  /* Intermediates of 4096 values each: 24 bytes per value and row (value, adjoint, tangent), so
   * 682 of them fit in 64 MiB and the 683rd, on line 684, does not. */
  for (int lines = 682; lines <= 683; lines++) {
    size_t k = (size_t)sprintf(src, "state x[4096]\n");
    for (int i = 0; i < lines; i++)
      k += (size_t)sprintf(src + k, i ? "a%d = sin(a%d)\n" : "a%d = sin(x)\n", i, i - 1);
    k += (size_t)sprintf(src + k, "dx/dt = a%d\n", lines - 1);
    const nde_status st = nde_model_load_string(src, k, "wide.nde", &m, NULL);
    if (lines == 682) {
      assert_int_equal(st, NDE_OK);
    } else {
      assert_int_equal(st, NDE_ERR_LIMIT);
      assert_int_equal(nde_model_get_diag(m, 0, &d), NDE_OK);
      assert_int_equal(d.line, 684);
      assert_int_equal(d.col, 8);
      assert_string_equal(d.message, "evaluating the model up to here needs 64.1 MiB of workspace "
                                     "per batch row, more than the limit of 64 MiB (expected "
                                     "fewer or narrower intermediate values)");
    }
    nde_model_destroy(&m);
  }
  free(src);
}

static void test_missing_file_is_an_io_error(void **state) {
  (void)state;
  nde_model *m = NULL;
  assert_int_equal(nde_model_load_file("/nonexistent/model.nde", &m, NULL), NDE_ERR_IO);
  assert_string_equal(nde_model_errmsg(m), "/nonexistent/model.nde: cannot read: No such file or directory\n");
  nde_model_destroy(&m);
  assert_null(m);
}

int main(void) {
  struct CMUnitTest tests[N_CASES + 6];
  for (size_t i = 0; i < N_CASES; i++)
    tests[i] = (struct CMUnitTest){cases[i].name, test_case, NULL, NULL, (void *)&cases[i]};
  tests[N_CASES] = (struct CMUnitTest)cmocka_unit_test(test_message_shows_the_line_and_a_caret);
  tests[N_CASES + 1] = (struct CMUnitTest)cmocka_unit_test(test_each_mistake_gives_one_message);
  tests[N_CASES + 2] = (struct CMUnitTest)cmocka_unit_test(test_nesting_deeper_than_the_limit_is_refused);
  tests[N_CASES + 3] = (struct CMUnitTest)cmocka_unit_test(test_file_larger_than_the_limit_is_refused);
  tests[N_CASES + 4] = (struct CMUnitTest)cmocka_unit_test(test_missing_file_is_an_io_error);
  tests[N_CASES + 5] = (struct CMUnitTest)cmocka_unit_test(test_model_size_limits_are_refused_at_load);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
