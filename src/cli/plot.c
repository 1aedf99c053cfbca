/* Figures with cairo (an SVG, PNG or PDF surface chosen by the file's extension).  A panel per
 * series of the states against time, one colour per state: data as circles, the model as solid
 * lines on a fine grid, forecasts dashed from a marked start, held-out data as crosses, bands
 * (ensemble quantiles or linearised intervals) as translucent areas; for a fit, a panel of the
 * loss history on a log scale with the phase boundaries.  Axes get "nice"
 * ticks (1, 2, 5 x 10^k), as a scientist expects to paste into a report. */
#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "plot.h"

#define PI 3.14159265358979323846
#define FIG_W 900.0
#define PANEL_H 240.0
#define LOSS_H 200.0
#define MAX_PANELS 9
#define FINE 400

static const double palette[][3] = {{0.12, 0.47, 0.71}, {0.84, 0.15, 0.16}, {0.17, 0.63, 0.17},
                                    {0.58, 0.40, 0.74}, {1.00, 0.50, 0.05}, {0.55, 0.34, 0.29},
                                    {0.89, 0.47, 0.76}, {0.50, 0.50, 0.50}};

typedef struct panel {
  double x, y, w, h;     /* device box of the plotting area */
  double x0, x1, y0, y1; /* data ranges (y in log10 when logy) */
  int logy;
} panel;

typedef enum { STYLE_LINE, STYLE_DASH, STYLE_DOT, STYLE_CROSS, STYLE_BAND } style;

/* A set of curves over time: n rows of t and y (NaN = absent).  The columns are the figure's:
 * the model's state components, then (fit figures) its observables. */
typedef struct curves {
  const char *label;
  size_t n;
  const double *t, *y;
  style st;
  const double *y2; /* STYLE_BAND: the upper edge (y is the lower) */
  int ld;           /* values per row, the first columns of the figure's (0: the states) */
} curves;

static double px(const panel *p, double x) { return p->x + (x - p->x0) / (p->x1 - p->x0) * p->w; }
static double yval(const panel *p, double y) { return p->logy ? log10(y) : y; }
static double py(const panel *p, double y) {
  return p->y + p->h - (yval(p, y) - p->y0) / (p->y1 - p->y0) * p->h;
}
static int usable(const panel *p, double y) { return isfinite(y) && (!p->logy || y > 0); }

static double nice_step(double range, int target) {
  double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

static void widen(double *lo, double *hi) {
  if (!(*hi > *lo)) {
    double c = isfinite(*lo) ? *lo : 0;
    *lo = c - 1;
    *hi = c + 1;
  }
  double m = 0.05 * (*hi - *lo);
  *lo -= m;
  *hi += m;
}

static void axes(cairo_t *cr, const panel *p, const char *xlabel, const char *ylabel,
                 const char *title) {
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, p->x, p->y, p->w, p->h);
  cairo_stroke(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 10);
  char buf[64];
  cairo_text_extents_t te;
  double sx = nice_step(p->x1 - p->x0, 6);
  for (double v = ceil(p->x0 / sx) * sx; v <= p->x1 + 1e-9 * sx; v += sx) {
    double X = px(p, v);
    cairo_move_to(cr, X, p->y + p->h);
    cairo_line_to(cr, X, p->y + p->h - 4);
    cairo_stroke(cr);
    snprintf(buf, sizeof buf, "%g", fabs(v) < 1e-12 * sx ? 0.0 : v);
    cairo_text_extents(cr, buf, &te);
    cairo_move_to(cr, X - te.width / 2, p->y + p->h + 13);
    cairo_show_text(cr, buf);
  }
  double sy = p->logy ? fmax(1, round(nice_step(p->y1 - p->y0, 5))) : nice_step(p->y1 - p->y0, 5);
  for (double v = ceil(p->y0 / sy) * sy; v <= p->y1 + 1e-9 * sy; v += sy) {
    double Y = p->y + p->h - (v - p->y0) / (p->y1 - p->y0) * p->h;
    cairo_move_to(cr, p->x, Y);
    cairo_line_to(cr, p->x + 4, Y);
    cairo_stroke(cr);
    if (p->logy) snprintf(buf, sizeof buf, "1e%g", v);
    else snprintf(buf, sizeof buf, "%g", fabs(v) < 1e-12 * sy ? 0.0 : v);
    cairo_text_extents(cr, buf, &te);
    cairo_move_to(cr, p->x - te.width - 5, Y + te.height / 2);
    cairo_show_text(cr, buf);
  }
  cairo_text_extents(cr, xlabel, &te);
  cairo_move_to(cr, p->x + p->w / 2 - te.width / 2, p->y + p->h + 27);
  cairo_show_text(cr, xlabel);
  cairo_save(cr);
  cairo_move_to(cr, p->x - 44, p->y + p->h / 2);
  cairo_rotate(cr, -PI / 2);
  cairo_text_extents(cr, ylabel, &te);
  cairo_rel_move_to(cr, -te.width / 2, 0);
  cairo_show_text(cr, ylabel);
  cairo_restore(cr);
  cairo_set_font_size(cr, 12);
  cairo_move_to(cr, p->x, p->y - 7);
  cairo_show_text(cr, title);
}

static void color(cairo_t *cr, int j) {
  const double *c = palette[j % (int)(sizeof palette / sizeof *palette)];
  cairo_set_source_rgb(cr, c[0], c[1], c[2]);
}

static void mark(cairo_t *cr, style st, double X, double Y) {
  if (st == STYLE_DOT) {
    cairo_new_sub_path(cr);
    cairo_arc(cr, X, Y, 2.8, 0, 2 * PI);
    cairo_stroke(cr);
  } else {
    cairo_move_to(cr, X - 3, Y - 3);
    cairo_line_to(cr, X + 3, Y + 3);
    cairo_move_to(cr, X - 3, Y + 3);
    cairo_line_to(cr, X + 3, Y - 3);
    cairo_stroke(cr);
  }
}

/* A band: the area between y and y2 where both are usable, in the state's colour, translucent. */
static void draw_band(cairo_t *cr, const panel *p, const curves *c, int n, int j) {
  const int ld = c->ld > 0 ? c->ld : n;
  if (j >= ld) return;
  const double *col = palette[j % (int)(sizeof palette / sizeof *palette)];
  cairo_set_source_rgba(cr, col[0], col[1], col[2], 0.18);
  size_t i = 0;
  while (i < c->n) {
    /* One run of usable points. */
    size_t a = i;
    while (a < c->n && !(usable(p, c->y[a * (size_t)ld + (size_t)j]) &&
                         usable(p, c->y2[a * (size_t)ld + (size_t)j])))
      a++;
    size_t b = a;
    while (b < c->n && usable(p, c->y[b * (size_t)ld + (size_t)j]) &&
           usable(p, c->y2[b * (size_t)ld + (size_t)j]))
      b++;
    if (b > a + 1) {
      cairo_move_to(cr, px(p, c->t[a]), py(p, c->y[a * (size_t)ld + (size_t)j]));
      for (size_t q = a + 1; q < b; q++) cairo_line_to(cr, px(p, c->t[q]), py(p, c->y[q * (size_t)ld + (size_t)j]));
      for (size_t q = b; q-- > a;) cairo_line_to(cr, px(p, c->t[q]), py(p, c->y2[q * (size_t)ld + (size_t)j]));
      cairo_close_path(cr);
      cairo_fill(cr);
    }
    i = b > a ? b : a + 1;
  }
}

static void draw(cairo_t *cr, const panel *p, const curves *c, int n, int j) {
  const int ld = c->ld > 0 ? c->ld : n;
  if (j >= ld) return;
  if (c->st == STYLE_BAND) {
    draw_band(cr, p, c, n, j);
    return;
  }
  color(cr, j);
  cairo_set_line_width(cr, c->st == STYLE_LINE || c->st == STYLE_DASH ? 1.6 : 1.1);
  if (c->st == STYLE_DASH) {
    const double d[2] = {6, 4};
    cairo_set_dash(cr, d, 2, 0);
  }
  int pen = 0;
  for (size_t i = 0; i < c->n; i++) {
    const double v = c->y[i * (size_t)ld + (size_t)j], t = c->t[i];
    if (!usable(p, v) || t < p->x0 || t > p->x1) {
      pen = 0;
      continue;
    }
    const double X = px(p, t), Y = py(p, v);
    if (c->st == STYLE_DOT || c->st == STYLE_CROSS) {
      mark(cr, c->st, X, Y);
    } else {
      if (pen) cairo_line_to(cr, X, Y);
      else cairo_move_to(cr, X, Y);
      pen = 1;
    }
  }
  if (c->st == STYLE_LINE || c->st == STYLE_DASH) cairo_stroke(cr);
  cairo_set_dash(cr, NULL, 0, 0);
}

/* The ranges of c's first nc columns (of the figure's). */
static void range(const curves *c, int n, int nc, panel *p, double *y0, double *y1) {
  const int ld = c->ld > 0 ? c->ld : n;
  for (size_t i = 0; i < c->n; i++) {
    if (c->t[i] < p->x0) p->x0 = c->t[i];
    if (c->t[i] > p->x1) p->x1 = c->t[i];
    for (int j = 0; j < nc && j < ld; j++)
      for (int e = 0; e < (c->y2 ? 2 : 1); e++) {
        const double v = (e ? c->y2 : c->y)[i * (size_t)ld + (size_t)j];
        if (!usable(p, v)) continue;
        *y0 = fmin(*y0, yval(p, v));
        *y1 = fmax(*y1, yval(p, v));
      }
  }
}

/* One panel of curves of the first nc columns (the states, then the observables); a forecast
 * that runs away must not squash the data: dashed curves widen the range by at most the others'
 * own height on each side.  mark_t: a vertical line (NaN: none). */
static void draw_panel(cairo_t *cr, panel *P, const nde_model *m, int nc, const curves *L,
                       int n_layers, const char *title, double mark_t) {
  const int n = nde_model_state_dim(m);
  P->x0 = P->y0 = INFINITY;
  P->x1 = P->y1 = -INFINITY;
  for (int k = 0; k < n_layers; k++)
    if (L[k].st != STYLE_DASH && L[k].st != STYLE_BAND) range(&L[k], n, nc, P, &P->y0, &P->y1);
  for (int k = 0; k < n_layers; k++) {
    if (L[k].st != STYLE_DASH && L[k].st != STYLE_BAND) continue;
    double a = INFINITY, b = -INFINITY;
    range(&L[k], n, nc, P, &a, &b);
    if (P->y1 >= P->y0) {
      const double h = P->y1 - P->y0;
      a = fmax(a, P->y0 - h);
      b = fmin(b, P->y1 + h);
    }
    P->y0 = fmin(P->y0, a);
    P->y1 = fmax(P->y1, b);
  }
  if (!(P->x1 > P->x0)) widen(&P->x0, &P->x1);
  widen(&P->y0, &P->y1);
  const char *what = nc > n ? (P->logy ? "value (log scale)" : "value")
                             : (P->logy ? "state (log scale)" : "state");
  axes(cr, P, "t", what, title);
  cairo_save(cr);
  cairo_rectangle(cr, P->x, P->y, P->w, P->h);
  cairo_clip(cr);
  for (int k = 0; k < n_layers; k++)
    for (int j = 0; j < nc; j++) draw(cr, P, &L[k], n, j);
  if (isfinite(mark_t) && mark_t >= P->x0 && mark_t <= P->x1) {
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1);
    const double d[2] = {2, 3};
    cairo_set_dash(cr, d, 2, 0);
    cairo_move_to(cr, px(P, mark_t), P->y);
    cairo_line_to(cr, px(P, mark_t), P->y + P->h);
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
  }
  cairo_restore(cr);
}

/* Legend at (x, y): the first nc columns (states, then observables) by colour, kinds of curves
 * by mark. */
static void legend(cairo_t *cr, double x, double y, const nde_model *m, int nc, const curves *L,
                   int n_layers, int start_mark) {
  const int n = nde_model_state_dim(m);
  cairo_set_font_size(cr, 11);
  for (int j = 0; j < nc && j < 24; j++, y += 17) {
    color(cr, j);
    cairo_rectangle(cr, x, y - 8, 10, 10);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_move_to(cr, x + 16, y + 1);
    cairo_show_text(cr, j < n ? nde_model_component_name(m, j)
                              : nde_model_observable_name(m, j - n));
  }
  y += 8;
  for (int k = 0; k < n_layers; k++, y += 17) {
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_line_width(cr, 1.4);
    const double X = x + 5, Y = y - 3;
    if (L[k].st == STYLE_DOT || L[k].st == STYLE_CROSS) {
      mark(cr, L[k].st, X, Y);
    } else if (L[k].st == STYLE_BAND) {
      cairo_set_source_rgba(cr, 0.2, 0.2, 0.2, 0.25);
      cairo_rectangle(cr, X - 7, Y - 5, 14, 10);
      cairo_fill(cr);
      cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    } else {
      if (L[k].st == STYLE_DASH) {
        const double d[2] = {5, 3};
        cairo_set_dash(cr, d, 2, 0);
      }
      cairo_move_to(cr, X - 7, Y);
      cairo_line_to(cr, X + 7, Y);
      cairo_stroke(cr);
      cairo_set_dash(cr, NULL, 0, 0);
    }
    cairo_move_to(cr, x + 16, y + 1);
    cairo_show_text(cr, L[k].label);
  }
  if (start_mark) {
    cairo_move_to(cr, x + 16, y + 1);
    cairo_show_text(cr, "(dotted: forecast start)");
  }
}

/* The loss history with the phase boundaries. */
static void loss_panel(cairo_t *cr, panel *Q, const nde_result *r) {
  const double *loss;
  const size_t n_loss = nde_result_history(r, &loss);
  Q->x0 = 0;
  Q->x1 = n_loss > 1 ? (double)n_loss : 1;
  Q->y0 = INFINITY;
  Q->y1 = -INFINITY;
  Q->logy = 1;
  for (size_t i = 0; i < n_loss; i++)
    if (loss[i] > 0 && isfinite(loss[i])) {
      Q->y0 = fmin(Q->y0, log10(loss[i]));
      Q->y1 = fmax(Q->y1, log10(loss[i]));
    }
  widen(&Q->y0, &Q->y1);
  Q->y0 = floor(Q->y0);
  Q->y1 = ceil(Q->y1);
  axes(cr, Q, "iteration", "loss", "loss history (each phase's own objective; dotted: phase ends)");
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  cairo_set_line_width(cr, 1.2);
  int pen = 0;
  for (size_t i = 0; i < n_loss; i++) {
    if (!(loss[i] > 0) || !isfinite(loss[i])) {
      pen = 0;
      continue;
    }
    const double X = px(Q, (double)i), Y = py(Q, loss[i]);
    if (pen) cairo_line_to(cr, X, Y);
    else cairo_move_to(cr, X, Y);
    pen = 1;
  }
  cairo_stroke(cr);
  const long *ends;
  const int np = nde_result_phase_ends(r, &ends);
  cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
  const double d[2] = {2, 3};
  cairo_set_dash(cr, d, 2, 0);
  for (int k = 0; k + 1 < np; k++) {
    if (ends[k] <= 0 || (double)ends[k] >= Q->x1) continue;
    cairo_move_to(cr, px(Q, (double)ends[k]), Q->y);
    cairo_line_to(cr, px(Q, (double)ends[k]), Q->y + Q->h);
    cairo_stroke(cr);
  }
  cairo_set_dash(cr, NULL, 0, 0);
}

typedef struct figure {
  cairo_surface_t *sf;
  cairo_t *cr;
  int png;
  const char *path;
} figure;

static int figure_open(figure *f, const char *path, double h) {
  memset(f, 0, sizeof *f);
  f->path = path;
  const int rc = nde_cli_check_plot(path);
  if (rc) return rc;
  const int svg = nde_cli_ends_with(path, ".svg"), pdf = nde_cli_ends_with(path, ".pdf");
  f->png = nde_cli_ends_with(path, ".png");
  f->sf = svg ? cairo_svg_surface_create(path, FIG_W, h)
          : pdf ? cairo_pdf_surface_create(path, FIG_W, h)
                : cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)FIG_W, (int)h);
  if (cairo_surface_status(f->sf) != CAIRO_STATUS_SUCCESS) {
    nde_cli_error("%s: cannot be created (%s)", path,
                  cairo_status_to_string(cairo_surface_status(f->sf)));
    cairo_surface_destroy(f->sf);
    return NDE_EXIT_IO;
  }
  f->cr = cairo_create(f->sf);
  cairo_set_source_rgb(f->cr, 1, 1, 1);
  cairo_paint(f->cr);
  return 0;
}

static int figure_close(figure *f) {
  cairo_destroy(f->cr);
  cairo_surface_flush(f->sf);
  cairo_status_t cs = CAIRO_STATUS_SUCCESS;
  if (f->png) cs = cairo_surface_write_to_png(f->sf, f->path);
  cairo_surface_finish(f->sf);
  if (cs == CAIRO_STATUS_SUCCESS) cs = cairo_surface_status(f->sf);
  cairo_surface_destroy(f->sf);
  if (cs != CAIRO_STATUS_SUCCESS) {
    nde_cli_error("%s: cannot be written (%s)", f->path, cairo_status_to_string(cs));
    return NDE_EXIT_IO;
  }
  return 0;
}

/* The fitted model of series k on a fine grid over [a, b] (fixed-step methods take the fit's
 * step): *t and *y malloc'ed; 0 points when it cannot be integrated. */
static size_t fine_curve(const nde_result *r, int k, double a, double b, double **t, double **y) {
  const int n = nde_model_state_dim(nde_result_model(r));
  *t = calloc(FINE, sizeof **t);
  *y = calloc((size_t)FINE * (size_t)n, sizeof **y);
  if (!*t || !*y || !(b > a)) return 0;
  for (int i = 0; i < FINE; i++) (*t)[i] = a + (b - a) * i / (FINE - 1.0);
  nde_start start = {.kind = NDE_START_FITTED, .series = k};
  nde_solve_stats ss;
  if (nde_result_integrate(r, &start, FINE, *t, NULL, *y, &ss, NULL) != NDE_OK) return 0;
  return FINE;
}

/* YH (nf x (n + no)): the states Y of series k's fitted curve and the model's observables along
 * them.  Returns 0, or -1 when they cannot be evaluated (the figure then shows the states). */
static int observe_curve(const nde_result *r, int k, size_t nf, const double *T,
                         const double *Y, double *YH, int n, int no) {
  double *H = calloc(nf * (size_t)no, sizeof *H);
  nde_start st = {.kind = NDE_START_FITTED, .series = k};
  if (!H || nde_result_observe(r, &st, nf, T, Y, H, NULL) != NDE_OK) {
    free(H);
    return -1;
  }
  for (size_t i = 0; i < nf; i++) {
    memcpy(YH + i * (size_t)(n + no), Y + i * (size_t)n, (size_t)n * sizeof *YH);
    memcpy(YH + i * (size_t)(n + no) + n, H + i * (size_t)no, (size_t)no * sizeof *YH);
  }
  free(H);
  return 0;
}

/* The data of the fit, when the file is still where it was. */
static nde_data *open_quietly(const char *path, const nde_model *m) {
  nde_data *d = NULL;
  if (!path || nde_data_open_for(path, m, &d, NULL) != NDE_OK) d = NULL;
  return d;
}

static const nde_traj *traj_named(const nde_data *d, const char *name) {
  for (size_t k = 0; d && k < nde_data_n_traj(d); k++)
    if (!strcmp(nde_data_traj(d, k)->name, name)) return nde_data_traj(d, k);
  return NULL;
}

int nde_plot_fit(const char *path, const nde_result *r, const char *data_path) {
  const nde_model *m = nde_result_model(r);
  const int S = nde_result_n_series(r), shown = S < MAX_PANELS ? S : MAX_PANELS;
  const int cols = shown < 3 ? shown : 3, rows = (shown + cols - 1) / cols;
  const double H = 60 + rows * (PANEL_H + 60) + LOSS_H + 70;
  const int logy = nde_result_settings(r)->objective.log_space;
  figure f;
  int rc = figure_open(&f, path, H);
  if (rc) return rc;
  nde_data *data = open_quietly(data_path, m);
  const double pw = (FIG_W - 220) / cols;
  curves L[3];
  int nl = 0;
  const int banded = nde_result_n_members(r) > 0 || nde_result_get_uncertainty(r);
  static char band_label[64];
  snprintf(band_label, sizeof band_label, "95%% band (%s)",
           nde_result_n_members(r) > 0 ? "ensemble" : "linearised");
  /* Columns: the states, then the observables when the data measure any (the fitted model's
   * observables drawn from its states). */
  const int n = nde_model_state_dim(m), no = nde_model_n_observables(m);
  int measured = 0;
  for (size_t k = 0; data && k < nde_data_n_traj(data) && !measured; k++)
    for (int j = n; j < (int)nde_data_n_state(data) && !measured; j++)
      measured = nde_data_traj(data, k)->col[j] >= 0;
  const int nc = measured ? n + no : n;
  for (int k = 0; k < shown; k++) {
    nde_result_series se;
    nde_result_get_series(r, k, &se);
    double *T = NULL, *Y = NULL, *lo = NULL, *hi = NULL, *YH = NULL;
    const size_t nf = fine_curve(r, k, se.t[0], se.t[se.n_obs - 1], &T, &Y);
    const double *model_y = Y;
    if (nc > n && nf && (YH = calloc(nf * (size_t)nc, sizeof *YH)) &&
        (observe_curve(r, k, nf, T, Y, YH, n, no) == 0))
      model_y = YH;
    nl = 0;
    if (banded && nf) {
      lo = calloc(nf * (size_t)n, sizeof *lo);
      hi = calloc(nf * (size_t)n, sizeof *hi);
      nde_start st = {.kind = NDE_START_FITTED, .series = k};
      if (lo && hi &&
          nde_result_integrate_band(r, &st, nf, T, NULL, 0.95, lo, NULL, hi, NULL, NULL) == NDE_OK)
        L[nl++] = (curves){band_label, nf, T, lo, STYLE_BAND, hi, 0};
    }
    const nde_traj *tr = traj_named(data, se.name);
    if (tr) L[nl++] = (curves){"data", tr->n, tr->t, tr->y, STYLE_DOT, NULL, (int)nde_data_n_state(data)};
    L[nl++] = (curves){"fitted model", nf, T, model_y, STYLE_LINE, NULL, model_y == YH ? nc : 0};
    panel P = {70 + (k % cols) * pw, 40 + (k / cols) * (PANEL_H + 60), pw - 75, PANEL_H, 0, 0, 0,
               0, logy};
    char title[160];
    snprintf(title, sizeof title, "series %.120s", se.name);
    draw_panel(f.cr, &P, m, nc, L, nl, title, NAN);
    free(T);
    free(Y);
    free(YH);
    free(lo);
    free(hi);
  }
  legend(f.cr, FIG_W - 140, 50, m, nc, L, nl, 0);
  if (S > shown) {
    char note[96];
    snprintf(note, sizeof note, "(%d of %d series shown)", shown, S);
    cairo_move_to(f.cr, FIG_W - 140, 50 + 17 * (nc + 4));
    cairo_show_text(f.cr, note);
  }
  panel Q = {70, H - LOSS_H - 60, FIG_W - 290, LOSS_H, 0, 0, 0, 0, 1};
  loss_panel(f.cr, &Q, r);
  nde_data_destroy(&data);
  return figure_close(&f);
}

int nde_plot_forecast(const char *path, const nde_plot_forecast_in *in) {
  const nde_result *r = in->r;
  const nde_model *m = nde_result_model(r);
  figure f;
  int rc = figure_open(&f, path, 420);
  if (rc) return rc;
  nde_data *data = open_quietly(in->data_path, m);
  curves L[5];
  int nl = 0;
  double *T = NULL, *Y = NULL;
  const nde_traj *held = in->held ? nde_data_traj(in->held, 0) : NULL;
  char band_label[64];
  snprintf(band_label, sizeof band_label, "%g%% band (%s)", 100 * in->level,
           nde_result_n_members(r) > 0 ? "ensemble" : "linearised");
  if (in->lo && in->hi) L[nl++] = (curves){band_label, in->n, in->t, in->lo, STYLE_BAND, in->hi, 0};
  if (in->series >= 0) {
    nde_result_series se;
    nde_result_get_series(r, in->series, &se);
    const nde_traj *tr = traj_named(data, se.name);
    if (tr) L[nl++] = (curves){"training data", tr->n, tr->t, tr->y, STYLE_DOT, NULL, (int)nde_data_n_state(data)};
    const size_t nf = fine_curve(r, in->series, se.t[0], se.t[se.n_obs - 1], &T, &Y);
    L[nl++] = (curves){"fitted model", nf, T, Y, STYLE_LINE, NULL, 0};
  }
  if (held) L[nl++] = (curves){"held-out data", held->n, held->t, held->y, STYLE_CROSS, NULL, (int)nde_data_n_state(in->held)};
  L[nl++] = (curves){"forecast", in->n, in->t, in->y, STYLE_DASH, NULL, 0};
  panel P = {70, 40, FIG_W - 290, 300, 0, 0, 0, 0, nde_result_settings(r)->objective.log_space};
  const int n = nde_model_state_dim(m);
  draw_panel(f.cr, &P, m, n, L, nl, "nde forecast", in->t_start);
  legend(f.cr, FIG_W - 200, 50, m, n, L, nl, 1);
  free(T);
  free(Y);
  nde_data_destroy(&data);
  return figure_close(&f);
}
