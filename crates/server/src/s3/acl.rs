//! Canned ACLs: `x-amz-acl` on create/put/copy, and Get/Put Bucket/Object ACL.
//! Grants are rendered from the canned name; a PutAcl body is accepted when
//! it expresses one of the canned ACLs. Anything else (other grantees,
//! `x-amz-grant-*` headers) is refused with NotImplemented, never dropped.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::PreflightS3;
use super::headers::refuse_grant_headers;
use crate::errors::{s3_err, store_err};

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

/// The canned ACLs Preflight enforces; the others S3 knows about only add
/// grants for bucket owners and log delivery, which here is the one owner.
fn canned(name: Option<&str>) -> S3Result<&'static str> {
    match name.unwrap_or("private") {
        "private"
        | "bucket-owner-read"
        | "bucket-owner-full-control"
        | "aws-exec-read"
        | "log-delivery-write" => Ok("private"),
        "public-read" => Ok("public-read"),
        "public-read-write" => Ok("public-read-write"),
        "authenticated-read" => Ok("authenticated-read"),
        _ => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Invalid canned ACL",
        )),
    }
}

pub fn canned_bucket_acl(name: Option<&str>) -> S3Result<&'static str> {
    canned(name)
}

pub fn canned_object_acl(name: Option<&str>) -> S3Result<&'static str> {
    canned(name)
}

fn group_grant(uri: &str, permission: &'static str) -> Grant {
    Grant {
        grantee: Some(Grantee {
            type_: Type::from_static(Type::GROUP),
            uri: Some(uri.to_owned()),
            display_name: None,
            email_address: None,
            id: None,
        }),
        permission: Some(Permission::from_static(permission)),
    }
}

/// The grant list of a canned ACL.
fn grants_of(acl: &str, owner: &Owner) -> Grants {
    let mut grants = vec![Grant {
        grantee: Some(Grantee {
            type_: Type::from_static(Type::CANONICAL_USER),
            id: owner.id.clone(),
            display_name: owner.display_name.clone(),
            email_address: None,
            uri: None,
        }),
        permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
    }];
    match acl {
        "public-read" => grants.push(group_grant(ALL_USERS, Permission::READ)),
        "public-read-write" => {
            grants.push(group_grant(ALL_USERS, Permission::READ));
            grants.push(group_grant(ALL_USERS, Permission::WRITE));
        }
        "authenticated-read" => grants.push(group_grant(AUTHENTICATED_USERS, Permission::READ)),
        _ => {}
    }
    grants
}

fn not_canned(what: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NotImplemented,
        format!(
            "Preflight supports canned ACLs only (x-amz-acl: private, public-read, public-read-write, authenticated-read); {what}"
        ),
    )
}

/// Who a grant names, for error messages.
fn grantee_label(g: Option<&Grantee>) -> String {
    let Some(g) = g else {
        return "no grantee".to_owned();
    };
    match (&g.uri, &g.id, &g.email_address) {
        (Some(uri), _, _) => format!("group {uri}"),
        (None, Some(id), _) => format!("canonical user {id}"),
        (None, None, Some(email)) => email.clone(),
        (None, None, None) => "an unnamed grantee".to_owned(),
    }
}

/// Maps an AccessControlPolicy body back to a canned ACL, when it is one:
/// FULL_CONTROL for the owner, and the group grants of a canned ACL.
fn canned_of_policy(policy: &AccessControlPolicy, owner: &Owner) -> S3Result<&'static str> {
    let mut all_read = false;
    let mut all_write = false;
    let mut auth_read = false;
    for g in policy.grants.iter().flatten() {
        let grantee = g.grantee.as_ref();
        let uri = grantee.and_then(|g| g.uri.as_deref());
        let is_owner = grantee.is_some_and(|g| {
            g.uri.is_none() && g.email_address.is_none() && g.id.is_some() && g.id == owner.id
        });
        let perm = g.permission.as_ref().map(|p| p.as_str());
        match (uri, perm) {
            (Some(ALL_USERS), Some(Permission::READ)) => all_read = true,
            (Some(ALL_USERS), Some(Permission::WRITE)) => all_write = true,
            (Some(AUTHENTICATED_USERS), Some(Permission::READ)) => auth_read = true,
            (None, Some(Permission::FULL_CONTROL)) if is_owner => {}
            _ => {
                return Err(not_canned(&format!(
                    "the grant of {} to {} is not implemented.",
                    perm.unwrap_or("no permission"),
                    grantee_label(grantee)
                )));
            }
        }
    }
    Ok(match (all_read, all_write, auth_read) {
        (false, false, false) => "private",
        (true, false, false) => "public-read",
        (true, true, false) => "public-read-write",
        (false, false, true) => "authenticated-read",
        _ => {
            return Err(not_canned(
                "these grants together match no canned ACL and are not implemented.",
            ));
        }
    })
}

fn acl_from_input(
    canned_name: Option<&str>,
    policy: Option<&AccessControlPolicy>,
    owner: &Owner,
) -> S3Result<&'static str> {
    match (canned_name, policy) {
        (Some(_), Some(_)) => Err(S3Error::with_message(
            S3ErrorCode::UnexpectedContent,
            "This request does not support content",
        )),
        (Some(name), None) => canned(Some(name)),
        (None, Some(policy)) => canned_of_policy(policy, owner),
        (None, None) => Err(s3_err(S3ErrorCode::MalformedACLError)),
    }
}

pub async fn get_bucket_acl(
    s3: &PreflightS3,
    req: S3Request<GetBucketAclInput>,
) -> S3Result<S3Response<GetBucketAclOutput>> {
    let entry = s3.bucket(&req.input.bucket)?;
    Ok(S3Response::new(GetBucketAclOutput {
        grants: Some(grants_of(&entry.record.acl, &s3.owner)),
        owner: Some(s3.owner.clone()),
    }))
}

pub async fn put_bucket_acl(
    s3: &PreflightS3,
    req: S3Request<PutBucketAclInput>,
) -> S3Result<S3Response<PutBucketAclOutput>> {
    let input = req.input;
    s3.bucket(&input.bucket)?;
    refuse_grant_headers(&input)?;
    let acl = acl_from_input(
        input.acl.as_ref().map(|a| a.as_str()),
        input.access_control_policy.as_ref(),
        &s3.owner,
    )?;
    s3.buckets
        .set(
            &input.bucket,
            preflight_store::BucketSetting::Acl,
            Some(acl.to_owned()),
        )
        .await
        .map_err(store_err)?;
    Ok(S3Response::new(PutBucketAclOutput::default()))
}

pub async fn get_object_acl(
    s3: &PreflightS3,
    req: S3Request<GetObjectAclInput>,
) -> S3Result<S3Response<GetObjectAclOutput>> {
    let input = req.input;
    s3.bucket(&input.bucket)?;
    let obj = s3
        .meta
        .get_object(&input.bucket, &input.key)
        .await
        .map_err(store_err)?
        .ok_or_else(|| s3_err(S3ErrorCode::NoSuchKey))?;
    Ok(S3Response::new(GetObjectAclOutput {
        grants: Some(grants_of(&obj.acl, &s3.owner)),
        owner: Some(s3.owner.clone()),
        ..Default::default()
    }))
}

pub async fn put_object_acl(
    s3: &PreflightS3,
    req: S3Request<PutObjectAclInput>,
) -> S3Result<S3Response<PutObjectAclOutput>> {
    let input = req.input;
    s3.bucket(&input.bucket)?;
    refuse_grant_headers(&input)?;
    let acl = acl_from_input(
        input.acl.as_ref().map(|a| a.as_str()),
        input.access_control_policy.as_ref(),
        &s3.owner,
    )?;
    s3.meta
        .set_object_acl(&input.bucket, &input.key, acl)
        .await
        .map_err(store_err)?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}
