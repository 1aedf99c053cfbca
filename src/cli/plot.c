/* Figures with cairo (an SVG or PNG surface chosen by the file's extension): a panel of the states
 * against time, with one colour per state (data as circles, fitted curves as solid lines, forecasts
 * dashed, held-out data as crosses), and for fits a panel of the loss history on a log scale.
 * Axes get "nice" ticks (1, 2, 5 x 10^k), as a scientist expects to paste into a report. */
#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "fit_result.h"
#include "plot.h"

#define FIG_W 820.0
#define PI 3.14159265358979323846
#define FIG_H 560.0

static const double palette[][3] = {{0.12, 0.47, 0.71}, {0.84, 0.15, 0.16}, {0.17, 0.63, 0.17},
                                    {0.58, 0.40, 0.74}, {1.00, 0.50, 0.05}, {0.55, 0.34, 0.29},
                                    {0.89, 0.47, 0.76}, {0.50, 0.50, 0.50}};

typedef struct panel {
  double x, y, w, h;     /* device box of the plotting area */
  double x0, x1, y0, y1; /* data ranges */
  int logy;
} panel;

static double px(const panel *p, double x) { return p->x + (x - p->x0) / (p->x1 - p->x0) * p->w; }
static double py(const panel *p, double y) {
  if (p->logy) y = log10(y);
  return p->y + p->h - (y - p->y0) / (p->y1 - p->y0) * p->h;
}

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

static void axes(cairo_t *cr, panel *p, const char *xlabel, const char *ylabel, const char *title) {
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, p->x, p->y, p->w, p->h);
  cairo_stroke(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 11);
  char buf[64];
  cairo_text_extents_t te;
  double sx = nice_step(p->x1 - p->x0, 8);
  for (double v = ceil(p->x0 / sx) * sx; v <= p->x1 + 1e-9 * sx; v += sx) {
    double X = px(p, v);
    cairo_move_to(cr, X, p->y + p->h);
    cairo_line_to(cr, X, p->y + p->h - 5);
    cairo_stroke(cr);
    snprintf(buf, sizeof buf, "%g", fabs(v) < 1e-12 * sx ? 0.0 : v);
    cairo_text_extents(cr, buf, &te);
    cairo_move_to(cr, X - te.width / 2, p->y + p->h + 15);
    cairo_show_text(cr, buf);
  }
  double sy = p->logy ? 1 : nice_step(p->y1 - p->y0, 6);
  for (double v = ceil(p->y0 / sy) * sy; v <= p->y1 + 1e-9 * sy; v += sy) {
    double Y = p->y + p->h - (v - p->y0) / (p->y1 - p->y0) * p->h;
    cairo_move_to(cr, p->x, Y);
    cairo_line_to(cr, p->x + 5, Y);
    cairo_stroke(cr);
    if (p->logy) snprintf(buf, sizeof buf, "1e%g", v);
    else snprintf(buf, sizeof buf, "%g", fabs(v) < 1e-12 * sy ? 0.0 : v);
    cairo_text_extents(cr, buf, &te);
    cairo_move_to(cr, p->x - te.width - 6, Y + te.height / 2);
    cairo_show_text(cr, buf);
  }
  cairo_text_extents(cr, xlabel, &te);
  cairo_move_to(cr, p->x + p->w / 2 - te.width / 2, p->y + p->h + 32);
  cairo_show_text(cr, xlabel);
  cairo_save(cr);
  cairo_move_to(cr, p->x - 48, p->y + p->h / 2);
  cairo_rotate(cr, -PI / 2);
  cairo_text_extents(cr, ylabel, &te);
  cairo_rel_move_to(cr, -te.width / 2, 0);
  cairo_show_text(cr, ylabel);
  cairo_restore(cr);
  cairo_set_font_size(cr, 13);
  cairo_move_to(cr, p->x, p->y - 8);
  cairo_show_text(cr, title);
}

static void color(cairo_t *cr, int j) {
  const double *c = palette[j % (int)(sizeof palette / sizeof *palette)];
  cairo_set_source_rgb(cr, c[0], c[1], c[2]);
}

typedef enum { STYLE_LINE, STYLE_DASH, STYLE_DOT, STYLE_CROSS } style;

static void draw(cairo_t *cr, const panel *p, const nde_plot_series *s, int n, int j, style st) {
  color(cr, j);
  cairo_set_line_width(cr, st == STYLE_LINE || st == STYLE_DASH ? 1.8 : 1.2);
  if (st == STYLE_DASH) {
    const double d[2] = {7, 4};
    cairo_set_dash(cr, d, 2, 0);
  }
  int pen = 0;
  for (size_t i = 0; i < s->n; i++) {
    double v = s->y[i * (size_t)n + (size_t)j], t = s->t[i];
    if (!isfinite(v) || t < p->x0 || t > p->x1) {
      pen = 0;
      continue;
    }
    double X = px(p, t), Y = py(p, v);
    if (st == STYLE_DOT) {
      cairo_new_sub_path(cr);
      cairo_arc(cr, X, Y, 3, 0, 2 * PI);
      cairo_stroke(cr);
    } else if (st == STYLE_CROSS) {
      cairo_move_to(cr, X - 3, Y - 3);
      cairo_line_to(cr, X + 3, Y + 3);
      cairo_move_to(cr, X - 3, Y + 3);
      cairo_line_to(cr, X + 3, Y - 3);
      cairo_stroke(cr);
    } else {
      if (pen) cairo_line_to(cr, X, Y);
      else cairo_move_to(cr, X, Y);
      pen = 1;
    }
  }
  if (st == STYLE_LINE || st == STYLE_DASH) cairo_stroke(cr);
  cairo_set_dash(cr, NULL, 0, 0);
}

static void range(const nde_plot_series *s, int n, double *t0, double *t1, double *y0, double *y1) {
  if (!s) return;
  for (size_t i = 0; i < s->n; i++) {
    if (s->t[i] < *t0) *t0 = s->t[i];
    if (s->t[i] > *t1) *t1 = s->t[i];
    for (int j = 0; j < n; j++) {
      double v = s->y[i * (size_t)n + (size_t)j];
      if (!isfinite(v)) continue;
      if (v < *y0) *y0 = v;
      if (v > *y1) *y1 = v;
    }
  }
}

/* The states panel plus an optional loss panel; sets (series, style) pairs. */
typedef struct layer {
  const nde_plot_series *s;
  style st;
} layer;

static int render(const char *path, const nde_model *m, const layer *L, int n_layers,
                  const double *loss, size_t n_loss, const char *title) {
  const size_t len = strlen(path);
  const int svg = len > 4 && strcmp(path + len - 4, ".svg") == 0;
  const int png = len > 4 && strcmp(path + len - 4, ".png") == 0;
  if (!svg && !png) {
    nde_cli_error("--plot: '%s' must end in .svg or .png", path);
    return NDE_EXIT_INPUT;
  }
  const int n = nde_model_state_dim(m);
  cairo_surface_t *sf = svg ? cairo_svg_surface_create(path, FIG_W, FIG_H)
                            : cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)FIG_W, (int)FIG_H);
  if (cairo_surface_status(sf) != CAIRO_STATUS_SUCCESS) {
    nde_cli_error("%s: cannot be created (%s)", path, cairo_status_to_string(cairo_surface_status(sf)));
    cairo_surface_destroy(sf);
    return NDE_EXIT_IO;
  }
  cairo_t *cr = cairo_create(sf);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  const double top_h = n_loss ? 300 : FIG_H - 110;
  panel P = {80, 40, FIG_W - 230, top_h, INFINITY, -INFINITY, INFINITY, -INFINITY, 0};
  /* A forecast that runs away must not squash the data: its values widen the range by at most
   * the data's own height on each side. */
  for (int k = 0; k < n_layers; k++)
    if (L[k].st != STYLE_DASH) range(L[k].s, n, &P.x0, &P.x1, &P.y0, &P.y1);
  for (int k = 0; k < n_layers; k++) {
    if (L[k].st != STYLE_DASH) continue;
    double a = INFINITY, b = -INFINITY;
    range(L[k].s, n, &P.x0, &P.x1, &a, &b);
    if (P.y1 >= P.y0) {
      double h = P.y1 - P.y0;
      a = fmax(a, P.y0 - h);
      b = fmin(b, P.y1 + h);
    }
    P.y0 = fmin(P.y0, a);
    P.y1 = fmax(P.y1, b);
  }
  if (!(P.x1 > P.x0)) widen(&P.x0, &P.x1);
  widen(&P.y0, &P.y1);
  axes(cr, &P, "t", "state", title);
  cairo_save(cr);
  cairo_rectangle(cr, P.x, P.y, P.w, P.h);
  cairo_clip(cr);
  for (int k = 0; k < n_layers; k++)
    for (int j = 0; j < n; j++) draw(cr, &P, L[k].s, n, j, L[k].st);
  cairo_restore(cr);
  /* Legend: states by colour, kinds by mark. */
  cairo_set_font_size(cr, 11);
  double ly = P.y + 10;
  for (int j = 0; j < n; j++, ly += 18) {
    color(cr, j);
    cairo_rectangle(cr, P.x + P.w + 15, ly - 8, 10, 10);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_move_to(cr, P.x + P.w + 32, ly + 1);
    cairo_show_text(cr, nde_model_component_name(m, j));
  }
  ly += 8;
  for (int k = 0; k < n_layers; k++, ly += 18) {
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_line_width(cr, 1.5);
    double X = P.x + P.w + 20, Y = ly - 3;
    if (L[k].st == STYLE_DOT) {
      cairo_new_sub_path(cr);
      cairo_arc(cr, X, Y, 3, 0, 2 * PI);
      cairo_stroke(cr);
    } else if (L[k].st == STYLE_CROSS) {
      cairo_move_to(cr, X - 3, Y - 3);
      cairo_line_to(cr, X + 3, Y + 3);
      cairo_move_to(cr, X - 3, Y + 3);
      cairo_line_to(cr, X + 3, Y - 3);
      cairo_stroke(cr);
    } else {
      if (L[k].st == STYLE_DASH) {
        const double d[2] = {5, 3};
        cairo_set_dash(cr, d, 2, 0);
      }
      cairo_move_to(cr, X - 8, Y);
      cairo_line_to(cr, X + 8, Y);
      cairo_stroke(cr);
      cairo_set_dash(cr, NULL, 0, 0);
    }
    cairo_move_to(cr, P.x + P.w + 32, ly + 1);
    cairo_show_text(cr, L[k].s->label);
  }
  if (n_loss) {
    panel Q = {80, top_h + 110, FIG_W - 230, FIG_H - top_h - 170, 0, (double)n_loss, INFINITY,
               -INFINITY, 1};
    for (size_t i = 0; i < n_loss; i++)
      if (loss[i] > 0 && isfinite(loss[i])) {
        Q.y0 = fmin(Q.y0, log10(loss[i]));
        Q.y1 = fmax(Q.y1, log10(loss[i]));
      }
    widen(&Q.y0, &Q.y1);
    Q.y0 = floor(Q.y0);
    Q.y1 = ceil(Q.y1);
    axes(cr, &Q, "iteration", "loss", "loss history");
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_set_line_width(cr, 1.2);
    int pen = 0;
    for (size_t i = 0; i < n_loss; i++) {
      if (!(loss[i] > 0) || !isfinite(loss[i])) {
        pen = 0;
        continue;
      }
      double X = px(&Q, (double)i), Y = py(&Q, loss[i]);
      if (pen) cairo_line_to(cr, X, Y);
      else cairo_move_to(cr, X, Y);
      pen = 1;
    }
    cairo_stroke(cr);
  }
  cairo_destroy(cr);
  cairo_surface_flush(sf);
  cairo_status_t cs = CAIRO_STATUS_SUCCESS;
  if (png) cs = cairo_surface_write_to_png(sf, path);
  cairo_surface_finish(sf);
  if (cs == CAIRO_STATUS_SUCCESS) cs = cairo_surface_status(sf);
  cairo_surface_destroy(sf);
  if (cs != CAIRO_STATUS_SUCCESS) {
    nde_cli_error("%s: cannot be written (%s)", path, cairo_status_to_string(cs));
    return NDE_EXIT_IO;
  }
  return 0;
}

int nde_plot_forecast(const char *path, const nde_model *model, const nde_plot_series *fitted,
                      const nde_plot_series *forecast, const nde_plot_series *held) {
  layer L[3];
  int k = 0;
  if (held && held->n) L[k++] = (layer){held, STYLE_CROSS};
  if (fitted && fitted->n) L[k++] = (layer){fitted, STYLE_LINE};
  L[k++] = (layer){forecast, STYLE_DASH};
  return render(path, model, L, k, NULL, 0, "nde forecast");
}

int nde_plot_fit_file(const char *plot_path, const char *fit_path) {
  nde_fit_result r;
  int rc = nde_fit_result_read(fit_path, 1, &r);
  if (rc) return rc;
  nde_data *data = NULL;
  if (r.data_file) {
    /* The data the fit saw, when the file is still where it was; else the curves alone. */
    const char **names = nde_cli_component_names(r.model);
    nde_data_opts o = nde_data_opts_default();
    if (names && nde_data_open(r.data_file, (size_t)r.n, names, &o, &data, NULL) != NDE_OK)
      data = NULL;
    free(names);
  }
  const nde_traj *ft = nde_data_traj(r.fitted, 0);
  nde_plot_series fs = {"fitted", ft->n, ft->t, ft->y}, ds = {"data", 0, NULL, NULL};
  /* Smooth curves: the fitted model integrated from its fitted initial state on a fine grid, the
   * way it was fitted (falls back to the curves at the data times). */
  enum { FINE = 400 };
  double *FT = calloc(FINE, sizeof *FT), *FY = calloc((size_t)FINE * (size_t)r.n, sizeof *FY);
  if (FT && FY && ft->n > 1) {
    for (int i = 0; i < FINE; i++)
      FT[i] = ft->t[0] + (ft->t[ft->n - 1] - ft->t[0]) * i / (FINE - 1.0);
    double h = r.dt > 0 ? r.dt : (ft->t[1] - ft->t[0]) / (r.steps_per_interval > 0 ? (double)r.steps_per_interval : 5.0), t_stop;
    if (nde_fit_result_integrate(&r, NULL, NULL, h, 1, 0, 0, r.u0, FINE, FT, FY, &t_stop) == 0)
      fs = (nde_plot_series){"fitted", FINE, FT, FY};
  }
  layer L[2];
  int k = 0;
  if (data) {
    const nde_traj *dt = nde_data_traj(data, 0);
    ds = (nde_plot_series){"data", dt->n, dt->t, dt->y};
    L[k++] = (layer){&ds, STYLE_DOT};
  }
  L[k++] = (layer){&fs, STYLE_LINE};
  rc = render(plot_path, r.model, L, k, r.history, r.n_history, "nde fit");
  free(FT);
  free(FY);
  nde_data_destroy(&data);
  nde_fit_result_free(&r);
  return rc;
}
