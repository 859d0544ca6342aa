/// @file segmentation_ximgproc.h
/// @brief The two segmentations taken from OpenCV's ximgproc (Felzenszwalb, SLIC), in a module of
/// their own that attributions/segmentation.cpp loads on first use.
///
/// libopencv_ximgproc links OpenCV's image codecs and through them about 100 more libraries
/// (GDAL, GDCM, OpenEXR, …), whose loading and relocation would cost every attrlab command about
/// 0.1 s at start-up although only LIME and KernelSHAP with `segmentation=felzenszwalb|slic` use
/// them. So attrlab_attributions does not link it: libattrlab_ximgproc.so, built from
/// segmentation_ximgproc.cpp next to libattrlab_attributions.so (and installed beside it), does,
/// and is opened with dlopen the first time one of the two algorithms runs. Its functions have C
/// names so that they are looked up by name; they take and return OpenCV matrices and let
/// OpenCV's exceptions through, as the direct calls did.
#pragma once

#include <opencv2/core.hpp>

extern "C" {

/// Felzenszwalb & Huttenlocher graph segmentation of `rgb` (CV_32FC3) into CV_32S `labels`.
void attrlab_ximgproc_felzenszwalb(const cv::Mat& rgb, double sigma, float k, int min_size, cv::Mat& labels);
using AttrlabXimgprocFelzenszwalb = decltype(&attrlab_ximgproc_felzenszwalb);

/// SLIC superpixels of the Lab image `lab` (CV_32FC3) into CV_32S `labels`; connectivity
/// enforced when `min_size_percent` > 0.
void attrlab_ximgproc_slic(const cv::Mat& lab, int region_size, float ruler, int iterations, int min_size_percent,
                           cv::Mat& labels);
using AttrlabXimgprocSlic = decltype(&attrlab_ximgproc_slic);

}
