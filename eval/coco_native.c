/* The COCO evaluator's loops in C: the results-JSON scanner, counting sort, matching and accumulation.
 *
 * A line-for-line port of the numba kernels in eval/coco_json.py and
 * eval/coco_kernels.py (read those for the rules), so that `detladder eval`
 * needs neither numba's import (~0.3 s) nor its JIT. eval/coco_native.py
 * compiles this file once with the system C compiler (-O2, no fast-math,
 * no FMA contraction: every result is the same IEEE double as numba's and
 * pycocotools') into a cache beside the package and loads it with ctypes.
 * Arrays are C-contiguous; the caller checks dtypes and shapes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* ---------------------------------------------------------------- results JSON scanner */

static int64_t ws(const uint8_t *b, int64_t n, int64_t i) {
    while (i < n && (b[i] == 32 || b[i] == 10 || b[i] == 13 || b[i] == 9)) i++;
    return i;
}

static int is_digit(const uint8_t *b, int64_t n, int64_t i) { return i < n && b[i] >= 48 && b[i] <= 57; }

/* JSON number at b[i]: status 0 exact, 1 parse it elsewhere, 2 not a number. */
static int number(const uint8_t *b, int64_t n, int64_t i, double *value, int64_t *end) {
    int neg = i < n && b[i] == 45;
    if (neg) i++;
    if (!is_digit(b, n, i)) { *end = i; return 2; }
    int64_t mant = 0, digits = 0, exp10 = 0;
    int is_long = 0, integer = 1;
    while (is_digit(b, n, i)) {
        if (mant == 0 && b[i] == 48) {
        } else if (digits < 18) {
            mant = mant * 10 + (b[i] - 48); digits++;
        } else {
            is_long = 1; exp10++;
        }
        i++;
    }
    if (i < n && b[i] == 46) {
        i++; integer = 0;
        if (!is_digit(b, n, i)) { *end = i; return 2; }
        while (is_digit(b, n, i)) {
            if (mant == 0 && b[i] == 48) {
                exp10--;
            } else if (digits < 18) {
                mant = mant * 10 + (b[i] - 48); digits++; exp10--;
            } else {
                is_long = 1;
            }
            i++;
        }
    }
    if (i < n && (b[i] == 101 || b[i] == 69)) {
        i++; integer = 0;
        int eneg = i < n && b[i] == 45;
        if (i < n && (b[i] == 45 || b[i] == 43)) i++;
        if (!is_digit(b, n, i)) { *end = i; return 2; }
        int64_t e = 0;
        while (is_digit(b, n, i)) {
            e = e * 10 + (b[i] - 48);
            if (e > 100000) e = 100000;
            i++;
        }
        exp10 += eneg ? -e : e;
    }
    *end = i;
    if (mant == 0 && !is_long) { *value = (neg && !integer) ? -0.0 : 0.0; return 0; }
    if (is_long || mant > 9007199254740992LL || exp10 > 22 || exp10 < -22) { *value = 0.0; return 1; }
    double v = exp10 >= 0 ? (double)mant * POW10[exp10] : (double)mant / POW10[-exp10];
    *value = neg ? -v : v;
    return 0;
}

/* The known key starting at the quote b[i]: 0 image_id, 1 category_id, 2 bbox, 3 score, -1 other. */
static int key(const uint8_t *b, int64_t n, int64_t i, int64_t *after) {
    static const char *keys[4] = {"image_id", "category_id", "bbox", "score"};
    static const int64_t lens[4] = {8, 11, 4, 5};
    int64_t j = i + 1;
    while (j < n && b[j] != 34) {
        if (b[j] == 92) { *after = j; return -1; }
        j++;
    }
    *after = j + 1;
    int64_t length = j - i - 1;
    for (int k = 0; k < 4; k++)
        if (length == lens[k] && memcmp(b + i + 1, keys[k], (size_t)length) == 0) return k;
    return -1;
}

/* A JSON integer of at most 18 digits at b[i]; 1 when it is one. */
static int integer(const uint8_t *b, int64_t n, int64_t i, int64_t *value, int64_t *end) {
    int neg = i < n && b[i] == 45;
    if (neg) i++;
    int64_t v = 0, digits = 0;
    while (is_digit(b, n, i)) { v = v * 10 + (b[i] - 48); digits++; i++; }
    *end = i;
    *value = neg ? -v : v;
    return digits > 0 && digits <= 18 && !(i < n && (b[i] == 46 || b[i] == 101 || b[i] == 69));
}

/* Fill ids (capacity, 2) and values (capacity, 5); -1 if not the plain form. hard (5 capacity, 3) gets
 * (row * 5 + column, start, end) of numbers left to a careful parse, counted in *n_hard. Returns rows.
 * A part of the file: the results from byte `begin` (0 for the first part, else the '{' of a result) up to
 * the '{' at byte `end` that starts the next part (end = n for the last part, which holds the closing ']').
 * A split that is not between two results of the plain form fails (-1), never misreads. */
int64_t scan_results(const uint8_t *b, int64_t n, int64_t begin, int64_t end, int64_t capacity, int64_t *ids,
                     double *values, int64_t *hard, int64_t *n_hard) {
    int64_t i = begin, row = 0, nh = 0;
    int last = end == n;
    *n_hard = 0;
    if (begin == 0) {
        i = ws(b, n, 0);
        if (i >= n || b[i] != 91) return -1;
        i = ws(b, n, i + 1);
        if (i < n && b[i] == 93) return last && ws(b, n, i + 1) == n ? 0 : -1;
    }
    for (;;) {
        if (i >= n || b[i] != 123 || row >= capacity || (!last && i >= end)) return -1;
        int seen = 0;
        i = ws(b, n, i + 1);
        for (;;) {
            if (i >= n || b[i] != 34) return -1;
            int k = key(b, n, i, &i);
            if (k < 0 || (seen & (1 << k))) return -1;
            seen |= 1 << k;
            i = ws(b, n, i);
            if (i >= n || b[i] != 58) return -1;
            i = ws(b, n, i + 1);
            if (k < 2) {
                int64_t v;
                if (!integer(b, n, i, &v, &i)) return -1;
                ids[row * 2 + k] = v;
                i = ws(b, n, i);
            } else {
                int cols = k == 2 ? 4 : 1;
                if (k == 2) {
                    if (i >= n || b[i] != 91) return -1;
                    i = ws(b, n, i + 1);
                }
                for (int c = 0; c < cols; c++) {
                    int col = k == 2 ? c : 4;
                    double x;
                    int64_t end;
                    int status = number(b, n, i, &x, &end);
                    if (status == 2) return -1;
                    if (status == 1) {
                        hard[nh * 3] = row * 5 + col; hard[nh * 3 + 1] = i; hard[nh * 3 + 2] = end;
                        nh++;
                    }
                    values[row * 5 + col] = x;
                    i = ws(b, n, end);
                    if (k == 2) {
                        int want = c < 3 ? 44 : 93;
                        if (i >= n || b[i] != want) return -1;
                        i = ws(b, n, i + 1);
                    }
                }
            }
            if (i < n && b[i] == 44) {
                i = ws(b, n, i + 1);
            } else if (i < n && b[i] == 125) {
                break;
            } else {
                return -1;
            }
        }
        if (seen != 15) return -1;
        row++;
        i = ws(b, n, i + 1);
        if (i < n && b[i] == 44) {
            i = ws(b, n, i + 1);
            if (!last && i == end) {
                *n_hard = nh;
                return row;
            }
        } else if (i < n && b[i] == 93 && last) {
            *n_hard = nh;
            return ws(b, n, i + 1) == n ? row : -1;
        } else {
            return -1;
        }
    }
}

/* ---------------------------------------------------------------- counting sort */

/* out = np.argsort(keys, kind="stable") for ints in [0, num_keys). Returns 0, or -1 without memory. */
int64_t stable_argsort_int(const int64_t *keys, int64_t n, int64_t num_keys, int64_t *out) {
    int64_t *start = calloc((size_t)num_keys + 1, sizeof(int64_t));
    if (!start) return -1;
    for (int64_t i = 0; i < n; i++) start[keys[i] + 1]++;
    for (int64_t k = 0; k < num_keys; k++) start[k + 1] += start[k];
    for (int64_t i = 0; i < n; i++) out[start[keys[i]]++] = i;
    free(start);
    return 0;
}

/* ---------------------------------------------------------------- matching (pycocotools' evaluateImg) */

/* Pairs p0 .. p1 - 1 of match_pairs in eval/coco_kernels.py; same arguments, flattened. Returns 0 or -1. */
int64_t match_pairs(int64_t p0, int64_t p1, const int64_t *det_start, const double *det_boxes,
                    const double *det_area, const int64_t *gt_start, const int64_t *gt_count,
                    const double *gt_boxes, const double *gt_area, const uint8_t *gt_crowd,
                    const uint8_t *gt_ignore, int64_t num_areas, const double *area_lo, const double *area_hi,
                    const double *thr, int64_t num_thr, uint64_t *tp_out, uint64_t *fp_out) {
    int64_t max_d = 1, max_g = 1;
    for (int64_t p = p0; p < p1; p++) {
        if (det_start[p + 1] - det_start[p] > max_d) max_d = det_start[p + 1] - det_start[p];
        if (gt_count[p] > max_g) max_g = gt_count[p];
    }
    double *ious = malloc(sizeof(double) * (size_t)(max_d * max_g));
    double *best_iou = malloc(sizeof(double) * (size_t)max_d);
    int64_t *order = malloc(sizeof(int64_t) * (size_t)max_g);
    uint8_t *taken = malloc((size_t)max_g);
    if (!ious || !best_iou || !order || !taken) {
        free(ious); free(best_iou); free(order); free(taken);
        return -1;
    }
    for (int64_t p = p0; p < p1; p++) {
        int64_t d0 = det_start[p], nd = det_start[p + 1] - d0, g0 = gt_start[p], ng = gt_count[p];
        for (int64_t d = 0; d < nd; d++) { /* pycocotools' bbIou: crowd union = detection area */
            const double *db = det_boxes + (d0 + d) * 4;
            double best = 0.0;
            for (int64_t g = 0; g < ng; g++) {
                const double *gb = gt_boxes + (g0 + g) * 4;
                double *cell = ious + d * ng + g;
                *cell = 0.0;
                double iw = (db[2] < gb[2] ? db[2] : gb[2]) - (db[0] > gb[0] ? db[0] : gb[0]);
                if (iw <= 0) continue;
                double ih = (db[3] < gb[3] ? db[3] : gb[3]) - (db[1] > gb[1] ? db[1] : gb[1]);
                if (ih <= 0) continue;
                double inter = iw * ih;
                double uni = gt_crowd[g0 + g] ? det_area[d0 + d] : det_area[d0 + d] + gt_area[g0 + g] - inter;
                *cell = inter / uni;
                if (*cell > best) best = *cell;
            }
            best_iou[d] = best;
        }
        for (int64_t a = 0; a < num_areas; a++) {
            int64_t k = 0; /* objects not ignored first, then the ignored ones, each in annotation order */
            for (int flag = 0; flag < 2; flag++)
                for (int64_t g = 0; g < ng; g++)
                    if (gt_ignore[(g0 + g) * num_areas + a] == flag) order[k++] = g;
            for (int64_t t = 0; t < num_thr; t++) {
                uint64_t bit = (uint64_t)1 << (a * num_thr + t);
                memset(taken, 0, (size_t)ng);
                for (int64_t d = 0; d < nd; d++) {
                    double best = thr[t];
                    int64_t m = -1;
                    int64_t stop = best_iou[d] >= best ? ng : 0;
                    for (int64_t j = 0; j < stop; j++) {
                        int64_t g = order[j];
                        if (taken[g] && !gt_crowd[g0 + g]) continue;
                        if (m > -1 && !gt_ignore[(g0 + m) * num_areas + a] && gt_ignore[(g0 + g) * num_areas + a])
                            break;
                        if (ious[d * ng + g] < best) continue;
                        best = ious[d * ng + g];
                        m = g;
                    }
                    if (m > -1) {
                        taken[m] = 1;
                        if (!gt_ignore[(g0 + m) * num_areas + a]) tp_out[d0 + d] |= bit;
                    } else if (!(det_area[d0 + d] < area_lo[a] || det_area[d0 + d] > area_hi[a])) {
                        fp_out[d0 + d] |= bit;
                    }
                }
            }
        }
    }
    free(ious); free(best_iou); free(order); free(taken);
    return 0;
}

/* ---------------------------------------------------------------- accumulation (pycocotools' accumulate) */

/* Classes k0 .. k1 - 1 of accumulate in eval/coco_kernels.py; precision (T, R, K, A, M) and recall
 * (T, K, A, M) preset to -1 by the caller. Returns 0 or -1. */
int64_t accumulate(int64_t k0, int64_t k1, const int64_t *class_start, const int64_t *rank, const uint64_t *tp,
                   const uint64_t *fp, const int64_t *npig, int64_t num_classes, int64_t num_areas,
                   const int64_t *max_dets, int64_t num_max, const double *rec_thrs, int64_t num_rec,
                   int64_t num_thr, double *precision, double *recall) {
    const double eps = 2.220446049250313e-16; /* np.spacing(1.0) */
    int64_t n_max = 1;
    for (int64_t k = k0; k < k1; k++)
        if (class_start[k + 1] - class_start[k] > n_max) n_max = class_start[k + 1] - class_start[k];
    double *pr = malloc(sizeof(double) * (size_t)n_max);
    double *rc = malloc(sizeof(double) * (size_t)n_max);
    int64_t *rows = malloc(sizeof(int64_t) * (size_t)n_max);
    if (!pr || !rc || !rows) {
        free(pr); free(rc); free(rows);
        return -1;
    }
    const int64_t K = num_classes, A = num_areas, M = num_max;
    for (int64_t k = k0; k < k1; k++) {
        for (int64_t m = 0; m < M; m++) {
            int64_t n_rows = 0;
            for (int64_t i = class_start[k]; i < class_start[k + 1]; i++)
                if (rank[i] < max_dets[m]) rows[n_rows++] = i;
            for (int64_t a = 0; a < A; a++) {
                int64_t np_ = npig[k * A + a];
                if (np_ == 0) continue;
                for (int64_t t = 0; t < num_thr; t++) {
                    uint64_t bit = (uint64_t)1 << (a * num_thr + t);
                    int64_t n = 0, tps = 0, fps = 0;
                    for (int64_t j = 0; j < n_rows; j++) {
                        int64_t i = rows[j];
                        if (tp[i] & bit) {
                            tps++;
                            pr[n] = (double)tps / ((double)fps + (double)tps + eps);
                            rc[n] = (double)tps / (double)np_;
                            n++;
                        } else if (fp[i] & bit) {
                            fps++;
                        }
                    }
                    recall[((t * K + k) * A + a) * M + m] = tps + fps ? (double)tps / (double)np_ : 0.0;
                    for (int64_t i = n - 1; i > 0; i--)
                        if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
                    int64_t i = 0;
                    for (int64_t r = 0; r < num_rec; r++) {
                        while (i < n && rc[i] < rec_thrs[r]) i++;
                        precision[(((t * num_rec + r) * K + k) * A + a) * M + m] = i < n ? pr[i] : 0.0;
                    }
                }
            }
        }
    }
    free(pr); free(rc); free(rows);
    return 0;
}

/* ---------------------------------------------------------------- sorting and the cut to maxDets */

/* An unsigned key whose ascending order is the descending order of s; -0.0 and 0.0 get the same key. */
static uint64_t descending_key(double s) {
    uint64_t u;
    if (s == 0.0) s = 0.0;
    memcpy(&u, &s, sizeof u);
    u = (u >> 63) ? ~u : (u | 0x8000000000000000ULL);
    return ~u;
}

#define RADIX_BITS 11
#define RADIX_SIZE (1 << RADIX_BITS)
#define RADIX_PASSES 6 /* 6 * 11 >= 64 */

/* out = perm stably sorted by descending scores[perm[i]] (LSD radix sort; equal scores keep their order). */
int64_t argsort_descending(const double *scores, const int64_t *perm, int64_t n, int64_t *out) {
    uint64_t *keys = malloc(sizeof(uint64_t) * (size_t)(2 * n + 1));
    int64_t *tmp = malloc(sizeof(int64_t) * (size_t)(n + 1));
    int64_t *count = calloc((size_t)RADIX_PASSES * RADIX_SIZE, sizeof(int64_t));
    if (!keys || !tmp || !count) {
        free(keys); free(tmp); free(count);
        return -1;
    }
    uint64_t *keys2 = keys + n;
    for (int64_t i = 0; i < n; i++) {
        keys[i] = descending_key(scores[perm[i]]);
        out[i] = perm[i];
        for (int p = 0; p < RADIX_PASSES; p++) count[p * RADIX_SIZE + ((keys[i] >> (p * RADIX_BITS)) & (RADIX_SIZE - 1))]++;
    }
    int64_t *src = out, *dst = tmp;
    uint64_t *ksrc = keys, *kdst = keys2;
    for (int p = 0; p < RADIX_PASSES; p++) {
        int64_t *c = count + p * RADIX_SIZE;
        int skip = 0;
        for (int64_t d = 0; d < RADIX_SIZE; d++)
            if (c[d] == n) skip = 1; /* every key has this digit: the pass changes nothing */
        if (skip || n == 0) continue;
        int64_t total = 0;
        for (int64_t d = 0; d < RADIX_SIZE; d++) { int64_t k = c[d]; c[d] = total; total += k; }
        for (int64_t i = 0; i < n; i++) {
            int64_t at = c[(ksrc[i] >> (p * RADIX_BITS)) & (RADIX_SIZE - 1)]++;
            dst[at] = src[i];
            kdst[at] = ksrc[i];
        }
        int64_t *t = src; src = dst; dst = t;
        uint64_t *kt = ksrc; ksrc = kdst; kdst = kt;
    }
    if (src != out) memcpy(out, src, sizeof(int64_t) * (size_t)n);
    free(keys); free(tmp); free(count);
    return 0;
}

/* dst = src stably sorted by keys[src[i]] in [0, num_keys). Returns 0 or -1. */
static int64_t counting_sort_by(const int64_t *src, int64_t n, const int64_t *keys, int64_t mul,
                                const int64_t *keys2, int64_t num_keys, int64_t *dst) {
    int64_t *start = calloc((size_t)num_keys + 1, sizeof(int64_t));
    if (!start) return -1;
    for (int64_t i = 0; i < n; i++) start[keys[src[i]] * mul + (keys2 ? keys2[src[i]] : 0) + 1]++;
    for (int64_t k = 0; k < num_keys; k++) start[k + 1] += start[k];
    for (int64_t i = 0; i < n; i++) dst[start[keys[src[i]] * mul + (keys2 ? keys2[src[i]] : 0)]++] = src[i];
    free(start);
    return 0;
}

/* eval.coco_ap._sort_and_cut: detections perm (n, by file order) -> kept rows by (class, image, -score,
 * order) in out_idx with their rank in out_rank, cut to max_det per pair, and out_by_class, the kept rows
 * in accumulation order (class, -score, image, order). Returns the number kept, or -1 without memory. */
int64_t sort_and_cut(const int64_t *perm, int64_t n, const int64_t *image, const int64_t *label,
                     const double *scores, int64_t n_img, int64_t n_cls, int64_t max_det, int64_t *out_idx,
                     int64_t *out_rank, int64_t *out_by_class) {
    int64_t *a = malloc(sizeof(int64_t) * (size_t)(n + 1));
    int64_t *by_score = malloc(sizeof(int64_t) * (size_t)(n + 1));
    int64_t *row = malloc(sizeof(int64_t) * (size_t)(n + 1));
    int64_t kept = -1;
    if (!a || !by_score || !row) goto done;
    int64_t sorted = 1; /* results files usually list their detections image by image already */
    for (int64_t i = 1; i < n && sorted; i++) sorted = image[perm[i - 1]] <= image[perm[i]];
    if (sorted) {
        memcpy(a, perm, sizeof(int64_t) * (size_t)n);
    } else if (counting_sort_by(perm, n, image, 1, NULL, n_img, a)) {
        goto done;                                                                      /* (image, order) */
    }
    if (argsort_descending(scores, a, n, by_score)) goto done;                         /* (-score, image, order) */
    if (counting_sort_by(by_score, n, label, n_img, image, n_cls * n_img, a)) goto done; /* (pair, -score, order) */
    kept = 0;
    int64_t rank = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t d = a[i];
        if (i > 0 && (label[d] != label[a[i - 1]] || image[d] != image[a[i - 1]])) rank = 0;
        row[d] = -1;
        if (rank < max_det) {
            row[d] = kept;
            out_idx[kept] = d;
            out_rank[kept] = rank;
            kept++;
        }
        rank++;
    }
    int64_t m = 0; /* kept rows in score order, then stably by class */
    for (int64_t i = 0; i < n; i++)
        if (row[by_score[i]] >= 0) a[m++] = row[by_score[i]];
    int64_t *start = calloc((size_t)n_cls + 1, sizeof(int64_t));
    if (!start) { kept = -1; goto done; }
    for (int64_t i = 0; i < m; i++) start[label[out_idx[a[i]]] + 1]++;
    for (int64_t k = 0; k < n_cls; k++) start[k + 1] += start[k];
    for (int64_t i = 0; i < m; i++) out_by_class[start[label[out_idx[a[i]]]]++] = a[i];
    free(start);
done:
    free(a); free(by_score); free(row);
    return kept;
}
